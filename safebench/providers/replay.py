"""`replay:<file.jsonl>`: answers recorded by another harness, judged without calling any model.

Each line is `{"item_id": ..., "response": ...}` (`id`/`answer`/`output` are accepted too), so the
jury can judge outputs produced elsewhere.
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


def load_replay(path: Path) -> dict[str, str]:
    answers: dict[str, str] = {}
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
            if not isinstance(item_id, str) or not isinstance(answer, str):
                problems.append(f"{path}:{number}: item_id and response must be strings")
                continue
            answers[item_id] = answer
    if problems:
        raise ModelSpecError(
            "; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else "")
        )
    return answers


class ReplayTarget(Target):
    @cached_property
    def answers(self) -> dict[str, str]:
        return load_replay(Path(self.config.name))

    async def respond(self, item: Item, messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
        try:
            return AIMessage(content=self.answers[item.id])
        except KeyError:
            raise MissingReplay(f"no recorded response for item {item.id!r} in {self.config.name}") from None


def replay_preflight(config: ModelConfig) -> None:
    path = Path(config.name)
    if not path.is_file():
        raise ModelSpecError(f"replay file not found: {path}")
    load_replay(path)


PROVIDER = Provider(
    name="replay",
    chat=None,
    target=ReplayTarget,
    preflight=replay_preflight,
    description="answers recorded elsewhere (item id -> response)",
)
