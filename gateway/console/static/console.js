// vidgate console: play every video of a comparison together, and send a form once.
(function () {
  "use strict";

  function videos() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-sync] video"));
  }

  function seekAll(seconds) {
    videos().forEach(function (v) {
      v.currentTime = Math.min(seconds, v.duration || seconds);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-sync-action]");
    if (!button) return;
    var all = videos();
    if (button.dataset.syncAction === "play") {
      var start = all.length ? all[0].currentTime : 0;
      all.forEach(function (v) { v.currentTime = start; });
      all.forEach(function (v) { v.play().catch(function () {}); });
    } else if (button.dataset.syncAction === "pause") {
      all.forEach(function (v) { v.pause(); });
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-sync-seek]")) seekAll(parseFloat(event.target.value));
  });

  // While they play, the first video leads: the others follow it when they drift, and the
  // seek bar shows where it is.
  setInterval(function () {
    var all = videos();
    var seek = document.querySelector("[data-sync-seek]");
    if (!all.length) return;
    var leader = all[0];
    if (seek) {
      var longest = Math.max.apply(null, all.map(function (v) { return v.duration || 0; }));
      if (longest > 0) seek.max = longest.toFixed(2);
      if (!leader.paused && document.activeElement !== seek) seek.value = leader.currentTime.toFixed(2);
    }
    if (leader.paused) return;
    all.slice(1).forEach(function (v) {
      if (!v.paused && v.duration && Math.abs(v.currentTime - leader.currentTime) > 0.25 && leader.currentTime < v.duration) {
        v.currentTime = leader.currentTime;
      }
    });
  }, 250);

  // A form that costs money is sent once, however often its button is pressed.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; button.textContent = "Sending…"; }
  });
})();
