"""The dataset card (`README.md`): what the folder holds, its fields, counts, and how to load it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from safebench.schema import Item, Taxonomy

_FORMAT = """\
## Folder format

```
items.jsonl     one JSON object per line (one item = one query)
images/         the images that items refer to
taxonomy.yaml   risk categories and their scenarios (ids used by items.jsonl)
audio/          spoken queries, if any (WAV, 16 kHz mono)
README.md       this card
```

## Fields of `items.jsonl`

| field | type | meaning |
| --- | --- | --- |
| `id` | string | unique item id |
| `scenario` | string | risk scenario id from `taxonomy.yaml` |
| `category` | string | id of the category holding that scenario |
| `text` | string | the query put to the model under test |
| `image` | string or absent | image path relative to this folder, e.g. `images/x.png` |
| `image_sha256` | string or absent | SHA-256 of the image file (hex); required when `image` is set |
| `image_text` | string or absent | the image-paired variant: the query rewritten to refer to its image |
| `audio` | list or absent | spoken versions: `path` (relative), `sha256`, `voice` (`male` / `female`) |
| `metadata` | object or absent | free-form extras, e.g. `key_phrase` (the text drawn in a typography image) |

`safebench validate FOLDER` lists every problem in a folder, each with its file, line and field.
"""

_LOADING = """\
## Loading

With safebench:

```python
from safebench.dataset import load_dataset

dataset = load_dataset("{path}")  # validates first; raises DatasetInvalid listing every problem
for item in dataset:
    print(item.id, item.scenario, item.text, dataset.image_path(item))
```

With Hugging Face `datasets` (image paths are relative to this folder, so make them absolute first):

```python
from pathlib import Path

from datasets import Image, load_dataset

root = Path("path/to/this/folder").resolve()
ds = load_dataset("json", data_files=str(root / "items.jsonl"), split="train")
ds = ds.map(lambda row: {{"image": str(root / row["image"]) if row.get("image") else None}})
ds = ds.cast_column("image", Image())
```

The `datasets` snippet is not exercised by safebench's offline test suite (the package is not one of its
dependencies); the safebench loader above is.
"""

_CONTENT_NOTE = """\
## Content note

The items are harmful-sounding *questions* used to test whether models refuse; the dataset holds no
answers. Do not add answers or instructions to it.
"""


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def md(text: str) -> str:
    """Escape text from a taxonomy or model for a Markdown table cell (it may hold `|`, `<`, ...)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def counts_table(taxonomy: Taxonomy, items: Sequence[Item]) -> str:
    counts = Counter(item.scenario for item in items)
    rows = ["| category | scenario | id | items |", "| --- | --- | --- | ---: |"]
    for category in taxonomy.categories:
        for scenario in category.scenarios:
            rows.append(
                f"| {md(category.name)} | {md(scenario.name)} | {md(scenario.id)} | {counts[scenario.id]} |"
            )
    rows.append(f"| **total** | | | **{len(items)}** |")
    return "\n".join(rows)


def dataset_card(
    title: str, summary: str, taxonomy: Taxonomy, items: Sequence[Item], *, load_path: str = "path/to/folder"
) -> str:
    """A deterministic card (no dates), so rebuilding an unchanged dataset changes no bytes."""
    with_images = sum(1 for item in items if item.image)
    scenarios = len({item.scenario for item in items})
    parts = [
        f"# {title}\n",
        f"{summary.strip()}\n",
        f"{len(items)} items in {scenarios} scenario(s); {with_images} with an image. "
        f"Taxonomy: `{taxonomy.name}` version {taxonomy.version}, {len(taxonomy.categories)} categories, "
        f"{len(taxonomy.scenarios)} scenarios.\n",
        "## Items per scenario\n",
        counts_table(taxonomy, items) + "\n",
        _FORMAT,
        _LOADING.format(path=load_path),
        _CONTENT_NOTE,
    ]
    return "\n".join(parts)
