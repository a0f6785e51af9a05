"""The taxonomy debate's moderator, as deterministic code: merge proposals, apply edits, count votes.

Judges' replies (`Proposal`, `Critique`, `Ballot`; `replies`) are merged into a *draft* (`merge`, the
draft's shape in `draft`), revised one rebuttal round at a time (`edits`, `edit_ops`), voted on
(`votes`) and finally turned into a `Taxonomy` (`finalize`, abbreviations in `abbrs`). Matching names
(merging, and resolving the targets of edits and votes) is in `matching`; with an embedder, merging
also joins synonyms by meaning (`safebench.embeddings`). Each module's docstring states its rules.
"""

from __future__ import annotations

from safebench.generation.taxonomy.abbrs import assign_abbrs, derive_abbr
from safebench.generation.taxonomy.draft import BASE, assign_ids, draft_scenarios, draft_view
from safebench.generation.taxonomy.edits import apply_edits
from safebench.generation.taxonomy.finalize import finalize
from safebench.generation.taxonomy.matching import (
    MERGE_THRESHOLD,
    NAME_WEIGHT,
    SYNONYM_THRESHOLD,
    clean,
    embedding_text,
    name_key,
    name_similarity,
    similarity,
    slugify,
    tokens,
)
from safebench.generation.taxonomy.merge import merge_proposals, merge_with_log
from safebench.generation.taxonomy.replies import (
    Ballot,
    Critique,
    Edit,
    Kind,
    Named,
    Op,
    Proposal,
    ProposedCategory,
    Vote,
)
from safebench.generation.taxonomy.votes import kept, tally_votes

__all__ = [
    "BASE",
    "MERGE_THRESHOLD",
    "NAME_WEIGHT",
    "SYNONYM_THRESHOLD",
    "Ballot",
    "Critique",
    "Edit",
    "Kind",
    "Named",
    "Op",
    "Proposal",
    "ProposedCategory",
    "Vote",
    "apply_edits",
    "assign_abbrs",
    "assign_ids",
    "clean",
    "derive_abbr",
    "draft_scenarios",
    "draft_view",
    "embedding_text",
    "finalize",
    "kept",
    "merge_proposals",
    "merge_with_log",
    "name_key",
    "name_similarity",
    "similarity",
    "slugify",
    "tally_votes",
    "tokens",
]
