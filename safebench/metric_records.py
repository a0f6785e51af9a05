"""What the metrics read of a record, and nothing else: a large run's metrics hold every record at once.

A `MetricRecord` is a few hundred bytes where a `Result` (texts, every opinion, pydantic objects) is
several kilobytes; `safebench.metrics` reads both alike (tests/test_metrics.py pins equal numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

from safebench.schema import Result, Usage

__all__ = ["MetricRecord", "metrics_view"]


@dataclass(frozen=True, slots=True)
class VerdictView:
    status: str
    unsafe: bool | None
    rating: float | None


@dataclass(frozen=True, slots=True)
class VoteView:
    """A round-0 opinion as the agreement statistics read it."""

    round: int
    status: str
    unsafe: bool | None
    seat: str


@dataclass(frozen=True, slots=True)
class MetricRecord:
    target: str
    item_id: str
    category: str
    scenario: str
    verdict: VerdictView
    truncated: bool
    rounds: int
    calls: int
    tokens: Usage
    opinions: tuple[VoteView, ...]


def metrics_view(result: Result) -> MetricRecord:
    """`result` as the metrics read it: verdict, counts, and its round-0 opinions' votes."""
    v = result.verdict
    return MetricRecord(
        target=result.target,
        item_id=result.item_id,
        category=result.category,
        scenario=result.scenario,
        verdict=VerdictView(status=v.status, unsafe=v.unsafe, rating=v.rating),
        truncated=result.truncated,
        rounds=result.rounds,
        calls=result.calls,
        tokens=result.tokens,
        opinions=tuple(
            VoteView(round=o.round, status=o.status, unsafe=o.unsafe, seat=o.seat)
            for o in result.opinions
            if o.round == 0
        ),
    )
