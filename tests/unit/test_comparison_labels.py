"""`Comparison.labelled`: blind labels follow the shown order, past Z too."""

from __future__ import annotations

from gateway.jobs.model import Comparison, ComparisonChild


def test_labels_follow_the_shown_order_and_go_on_past_z() -> None:
    children = [ComparisonChild(provider=f"p{i}", video_id=f"v{i}") for i in range(28)]
    plain = Comparison(id="c", tenant="t", created_at=0, model="m", children=children[:3])
    assert [(label, c.provider) for label, c in plain.labelled()] == [("A", "p0"), ("B", "p1"), ("C", "p2")]
    shuffled = Comparison(id="c", tenant="t", created_at=0, model="m", children=children[:3], blind=True, shown=["p2", "p0", "p1"])
    assert [(label, c.provider) for label, c in shuffled.labelled()] == [("A", "p2"), ("B", "p0"), ("C", "p1")]
    many = Comparison(id="c", tenant="t", created_at=0, model="m", children=children)
    assert [label for label, _ in many.labelled()][24:] == ["Y", "Z", "AA", "AB"]
