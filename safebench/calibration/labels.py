"""Human-labelled (query, response[, image]) pairs: the data `safebench calibrate` scores judges on.

Every reader (safebench/calibration/formats.py) turns its public format into a `LabelSet`; the rest of
calibration only sees these records. Labels are booleans: True = unsafe (jailbroken, harmful), the
positive class throughout.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class LabelledPair(BaseModel):
    """One (query, response) pair with its human labels and any stored judges' labels."""

    id: str = Field(min_length=1)  # unique within the set; also the item id of the calibration run
    query: str = Field(min_length=1)
    response: str
    # An image file (absolute path) shown with the query, when the set has one and it was found.
    image: str | None = None
    # What the image shows, in words, for sets whose images are referenced but not supplied (MSTS).
    image_description: str | None = None
    category: str | None = None
    # Each annotator's label, in the file's annotator order; None where that annotator gave none.
    human: list[bool | None] = Field(default_factory=list)
    # The human reference: the single label, or the annotators' majority; None for a tie or no label.
    reference: bool | None = None
    # Stored judge name -> its label (None where the stored value could not be read as a label).
    stored: dict[str, bool | None] = Field(default_factory=dict)
    row: int  # 1-based data row (or list position) in the source file, for messages


class LabelSet(BaseModel):
    """A whole labelled file, read and validated."""

    source: str  # the file read
    format: str  # jailbreakbench | harmbench | msts | table
    pairs: list[LabelledPair]
    annotators: list[str] = Field(default_factory=list)  # names of the human label columns
    judges: list[str] = Field(default_factory=list)  # stored judge names, in column order
    # Stored judge columns left out, with why (e.g. "no value reads as a label").
    skipped: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)  # e.g. "images not supplied: jurors get descriptions"
