"""`replay:<file.jsonl>`: answers recorded by another harness, judged without calling any model.

Each line is `{"item_id": ..., "response": ...}` (`id`/`answer`/`output` are accepted too), so the
jury can judge outputs produced elsewhere. A file holding several targets' answers (a safebench
`results.jsonl`: lines with `target`) needs `replay:FILE#LABEL` to say whose answers to judge.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig

from safebench.models import ModelConfig
from safebench.providers.registry import ModelSpecError, Provider
from safebench.schema import Item
from safebench.targets import Target

_ID_KEYS = ("item_id", "id")
_ANSWER_KEYS = ("response", "answer", "output")


class MissingReplay(LookupError):
    pass


def split_spec(name: str) -> tuple[Path, str | None]:
    """`FILE#LABEL` → (FILE, LABEL); a plain `FILE` → (FILE, None)."""
    path, sep, label = name.rpartition("#")
    return (Path(path), label) if sep and path else (Path(name), None)


def load_replay(path: Path, label: str | None = None) -> dict[str, str]:
    """`{item_id: response}` of `path`, of target `label` when the file holds several targets."""
    rows: list[tuple[str | None, str, str | None]] = []  # (target, item_id, response or None)
    problems: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: invalid JSON ({exc.msg})")
                continue
            item_id = next((row[k] for k in _ID_KEYS if isinstance(row, dict) and k in row), None)
            answer = next((row[k] for k in _ANSWER_KEYS if isinstance(row, dict) and k in row), None)
            target = row.get("target") if isinstance(row, dict) else None
            # A results.jsonl line whose target failed has response null: nothing to replay for it.
            if not isinstance(item_id, str) or not (isinstance(answer, str) or (target and answer is None)):
                problems.append(f"{path}:{number}: item_id and response must be strings")
                continue
            rows.append((target if isinstance(target, str) else None, item_id, answer))
    if problems:
        raise ModelSpecError(
            "; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else "")
        )
    labels = list(dict.fromkeys(t for t, _, _ in rows if t is not None))
    if label is not None and label not in labels:
        raise ModelSpecError(
            f"{path}: no answers of target {label!r}; it holds: {', '.join(labels) or 'none'}"
        )
    if label is None and len(labels) > 1:
        raise ModelSpecError(
            f"{path} holds the answers of {len(labels)} targets ({', '.join(labels)}): "
            f"choose one with replay:{path}#LABEL"
        )
    return {i: a for t, i, a in rows if a is not None and (label is None or t == label)}


class ReplayTarget(Target):
    @cached_property
    def answers(self) -> dict[str, str]:
        return load_replay(*split_spec(self.config.name))

    async def respond(self, item: Item, messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
        try:
            return AIMessage(content=self.answers[item.id])
        except KeyError:
            raise MissingReplay(f"no recorded response for item {item.id!r} in {self.config.name}") from None


def replay_preflight(config: ModelConfig) -> None:
    path, label = split_spec(config.name)
    if not path.is_file():
        raise ModelSpecError(f"replay file not found: {path}")
    load_replay(path, label)


PROVIDER = Provider(
    name="replay",
    chat=None,
    target=ReplayTarget,
    preflight=replay_preflight,
    description="answers recorded elsewhere (item id -> response)",
)
