"""The web console at /console: compare providers side by side (blind if you like), and
read videos, stats and providers, signed in with a vidgate key.

Server-rendered Jinja2 templates, htmx (vendored in `static/`) for partial updates, server-
sent events for live progress and inline SVG charts; every asset ships in this package.

    console = build(settings)     # gateway.app mounts console.router and console.static
"""

from gateway.console.site import Console, build

__all__ = ["Console", "build"]
