"""`gateway.console.views` and `charts`: what a page shows, without HTTP."""

from __future__ import annotations

import pytest

from gateway.console import views
from gateway.console.charts import PLOT_WIDTH, bar_chart
from gateway.jobs.model import Attempt, Comparison, ComparisonChild, ComparisonVote, Job
from providers.base import Cost, ErrorClass, ErrorInfo, GenerationRequest, JobStatus, TextInput


def job(video_id: str, provider: str, status: JobStatus = JobStatus.COMPLETED) -> Job:
    return Job(
        id=video_id,
        tenant="t",
        key_name="k",
        created_at=100.0,
        updated_at=100.0,
        status=status,
        model="seedance-2.0",
        mode="text",
        request=GenerationRequest(model="seedance-2.0", input=TextInput(prompt="p")),
        completed_at=112.5 if status is JobStatus.COMPLETED else None,
        cost=Cost(amount=125, unit="credits", usd_estimate=0.1875),
        error=ErrorInfo.of(ErrorClass.CONTENT_REJECTED, "nope") if status is JobStatus.FAILED else None,
        attempts=[Attempt(provider=provider, model_id="m", started_at=100.0, status="completed")],
    )


def comparison(*, blind: bool, vote: ComparisonVote | None = None) -> Comparison:
    return Comparison(
        id="cmp_1",
        tenant="t",
        created_at=100.0,
        model="seedance-2.0",
        children=[ComparisonChild(provider="useapi", video_id="v1"), ComparisonChild(provider="powertokens", video_id="v2")],
        blind=blind,
        shown=["powertokens", "useapi"],
        vote=vote,
    )


def test_blind_cards_hide_everything_that_names_the_provider() -> None:
    jobs: dict[str, Job | None] = {"v1": job("v1", "useapi"), "v2": job("v2", "powertokens", JobStatus.FAILED)}
    blind = views.cards(comparison(blind=True), jobs)
    assert [(c.label, c.provider, c.title) for c in blind] == [("A", None, "A"), ("B", None, "B")]
    assert blind[1].cost_native == blind[1].cost_usd == blind[1].time_to_video == "hidden"
    assert blind[0].attempts == [] and blind[0].error == "failed"
    assert blind[0].video_url is None and blind[1].video_url == "/console/videos/v1/content"
    revealed = views.cards(comparison(blind=True, vote=ComparisonVote(winner="useapi", at=1, key_name="k")), jobs)
    assert [c.title for c in revealed] == ["A · powertokens", "B · useapi"]
    assert (revealed[1].cost_usd, revealed[1].cost_native, revealed[1].time_to_video) == ("$0.1875", "125 credits", "12.5 s")
    assert revealed[0].error == "content_rejected: nope"


def test_the_ballot_opens_once_two_videos_completed_and_closes_with_the_verdict() -> None:
    both: dict[str, Job | None] = {"v1": job("v1", "useapi"), "v2": job("v2", "powertokens")}
    running: dict[str, Job | None] = {"v1": job("v1", "useapi"), "v2": job("v2", "powertokens", JobStatus.IN_PROGRESS)}
    open_ = views.ballot(comparison(blind=True), views.cards(comparison(blind=True), both))
    assert open_.open and open_.choices == [("A", "A"), ("B", "B")]
    assert not views.ballot(comparison(blind=True), views.cards(comparison(blind=True), running)).open
    voted = comparison(blind=True, vote=ComparisonVote(winner="useapi", at=1, key_name="k"))
    assert views.ballot(voted, views.cards(voted, both)).verdict == "B · useapi"
    tie = comparison(blind=False, vote=ComparisonVote(winner=None, at=1, key_name="k"))
    assert views.ballot(tie, views.cards(tie, both)).verdict == "a tie"
    assert views.provider_of_label(comparison(blind=True), "B") == "useapi" and views.provider_of_label(comparison(blind=True), "Z") is None


@pytest.mark.parametrize(
    ("amount", "per", "text"),
    [(None, "", "–"), (0.1875, "", "$0.1875"), (0.75, "", "$0.75"), (12.5, "", "$12.50"), (0.0, "", "$0.00"), (0.0375, "s", "$0.0375/s")],
)
def test_usd(amount: float | None, per: str, text: str) -> None:
    assert views.usd(amount, per=per) == text


def test_native_costs_read_as_the_upstream_reported_them() -> None:
    assert views.native(Cost(amount=108900, unit="tokens")) == "108,900 tokens"
    assert views.native(Cost(amount=0.75, unit="usd", usd_estimate=0.75)) == "$0.75"
    assert views.native(None) == "–"


def test_bars_scale_to_the_largest_value_or_the_given_maximum() -> None:
    chart = bar_chart("t", [("a", [0.5, None]), ("b", [1.0, 0.25])], series=["x", "y"], fmt=str)
    widths = [[bar.width for bar in row.bars] for row in chart.rows]
    assert widths == [[PLOT_WIDTH / 2, 0.0], [PLOT_WIDTH, PLOT_WIDTH / 4]]
    assert [bar.text for bar in chart.rows[0].bars] == ["0.5", "None"]
    assert chart.rows[1].bars[0].y > chart.rows[0].bars[1].y  # rows do not overlap
    rates = bar_chart("r", [("a", [0.5])], series=["x"], fmt=str, max_value=1.0)
    assert rates.rows[0].bars[0].width == PLOT_WIDTH / 2
    assert bar_chart("e", [], series=["x"], fmt=str).empty
    tiny = bar_chart("t", [("a", [1e-9]), ("b", [1.0])], series=["x"], fmt=str)
    assert tiny.rows[0].bars[0].width == 1.0  # something, however small, shows
