"""Counting the final vote: which judges approved or rejected each scenario, and whether it is kept.

A scenario is kept when more than half of the valid votes cast on it approve (a judge whose ballot
failed, or who skipped that scenario, casts none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from safebench.generation.taxonomy.draft import DraftIndex, draft_scenarios


def tally_votes(
    draft: Mapping[str, Any], ballots: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
) -> dict[str, dict[str, list[str]]]:
    """Scenario id -> judges that approved / rejected it; unknown ids and repeated votes are ignored."""
    index = DraftIndex(draft)
    tally = {s["id"]: {"approve": [], "reject": []} for s in draft_scenarios(draft)}
    for judge, votes in ballots:
        seen: set[str] = set()
        for vote in votes:
            scenario = index.find("scenario", str(vote.get("scenario", "")))
            if scenario is None or scenario["id"] in seen:
                continue
            seen.add(scenario["id"])
            tally[scenario["id"]]["approve" if vote.get("approve") else "reject"].append(judge)
    return tally


def kept(votes: Mapping[str, Sequence[str]]) -> bool:
    """A strict majority of the valid votes cast approves."""
    approve, reject = len(votes["approve"]), len(votes["reject"])
    return approve * 2 > approve + reject
