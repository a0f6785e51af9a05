"""Run an evaluation: every (target, item) through the evaluation graph, concurrently, resumably.

UI stays outside: progress is reported through `on_event(dict)` callbacks fed by the graph's stream.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graphs.context import EvaluationContext, jury_context
from graphs.evaluation import build_evaluation_graph
from graphs.state import Case
from safebench.config import RunConfig
from safebench.dataset import Dataset, load_dataset, resolve_dataset_dir
from safebench.dataset.validate import AUDIO_MODALITIES, DatasetUnsuitable, check_modality
from safebench.metrics import compute_metrics
from safebench.models import ModelConfig
from safebench.providers.registry import preflight
from safebench.report import write_metrics
from safebench.schema import Item, Opinion, Result, Usage, Verdict
from safebench.store import RunStore
from safebench.targets import create_target

Event = dict[str, Any]
EventHandler = Callable[[Event], None]

RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"


@dataclass
class RunOutcome:
    run_dir: Path
    metrics: dict[str, Any]
    records: int
    dataset: Dataset


def all_models(config: RunConfig) -> list[ModelConfig]:
    from graphs.context import jury_agents

    jurors, foreperson = jury_agents(config.jury)
    return [*config.targets, *(j.config for j in jurors), foreperson.config]


def check_models(config: RunConfig) -> None:
    """Unknown spec, missing key, unreachable endpoint: fail before anything starts (ModelSpecError)."""
    seen: set[str] = set()
    for model in all_models(config):
        key = model.model_dump_json()
        if key not in seen:
            seen.add(key)
            preflight(model)


def build_case(item: Item, dataset: Dataset, modality: str = "image", voice: str = "female") -> Case:
    scenario = dataset.taxonomy.scenario(item.scenario)
    category = dataset.taxonomy.category_by_id[scenario.category]
    spoken = modality in AUDIO_MODALITIES
    # A spoken query comes without its image: the jury is neither shown nor told of an image the
    # target never received.
    image = str((dataset.root / item.image).resolve()) if item.image and not spoken else None
    ref = next((a for a in item.audio if a.voice == voice), None)
    audio = str((dataset.root / ref.path).resolve()) if ref is not None and spoken else None
    return {
        "item_id": item.id,
        "scenario": scenario.id,
        "scenario_name": scenario.name,
        "scenario_definition": scenario.definition,
        "category": category.id,
        "category_name": category.name,
        "query": item.text,
        "image": image,
        "has_image": image is not None,
        # The recording the target hears (absolute, like image); the jury judges its transcript, `query`.
        "audio": audio,
        "response": "",
    }


def to_result(item: Item, target: str, state: dict[str, Any], error: str | None = None) -> Result:
    verdict = state.get("verdict") or Verdict(status="error", reasoning="no verdict").model_dump()
    return Result(
        item_id=item.id,
        target=target,
        scenario=item.scenario,
        category=item.category,
        query=item.text,
        response=state.get("response"),
        verdict=Verdict.model_validate(verdict),
        rounds=state.get("rounds", 0),
        opinions=[Opinion.model_validate(op) for op in state.get("opinions", [])],
        calls=state.get("calls", 0),
        tokens=Usage(**(state.get("tokens") or {})),
        error=error or state.get("error"),
    )


class Evaluation:
    """One run directory: its store, its checkpointer and the work left to do."""

    def __init__(
        self,
        config: RunConfig,
        *,
        resume: bool = False,
        on_event: EventHandler | None = None,
        callbacks: list[BaseCallbackHandler] | None = None,
    ) -> None:
        self.config = config
        self.resume = resume
        self.on_event = on_event or (lambda _e: None)
        # Extra LangChain callback handlers for each item's trace (LangSmith needs none: env vars do it).
        self.callbacks = callbacks or []
        self.run_id = str(uuid.uuid4())
        self._dataset: Dataset | None = None

    def prepare(self) -> Dataset:
        """Everything that can fail on bad input, before any model call: dataset, models, run dir.
        Done once: the CLI prepares before `run`, and validating a large dataset decodes every image."""
        if self._dataset is not None:
            return self._dataset
        dataset = load_dataset(resolve_dataset_dir(self.config.dataset))
        items = dataset.items[: self.config.limit] if self.config.limit else dataset.items
        unsuitable = check_modality(
            dataset.root, self.config.modality, self.config.voice, {item.id for item in items}
        )
        if unsuitable:
            raise DatasetUnsuitable(unsuitable, dataset.root, self.config.modality)
        check_models(self.config)
        self._dataset = dataset
        return dataset

    async def run(self) -> RunOutcome:
        dataset = self.prepare()
        items = dataset.items[: self.config.limit] if self.config.limit else dataset.items
        out = self.config.out
        store = RunStore(out)
        try:
            identity = self.config.public_dict()
            identity.pop("out"), identity.pop("concurrency")
            store.claim(identity, resume=self.resume)
            (out / CONFIG_FILE).write_text(yaml.safe_dump(self.config.public_dict(), sort_keys=False))
            await self._evaluate(store, dataset, items)
            return self._finish(store, dataset)
        finally:
            store.close()

    async def _evaluate(self, store: RunStore, dataset: Dataset, items: list[Item]) -> None:
        retry = self.config.retry.policy()
        shared = jury_context(self.config.jury, retry)
        contexts = [
            EvaluationContext(**shared, target=create_target(t), modality=self.config.modality)  # type: ignore[arg-type]
            for t in self.config.targets
        ]
        work: asyncio.Queue[tuple[EvaluationContext, int, Item]] = asyncio.Queue()
        total = 0
        for ctx in contexts:
            assert ctx.target is not None
            done = store.done(ctx.target.spec)
            for position, item in enumerate(items):
                total += 1
                if item.id not in done:
                    work.put_nowait((ctx, position, item))
        self.on_event({"event": "start", "total": total, "done": total - work.qsize(), "run_id": self.run_id})

        async with AsyncSqliteSaver.from_conn_string(str(self.config.out / "checkpoints.sqlite")) as saver:
            graph = build_evaluation_graph().compile(checkpointer=saver, name="evaluation")

            async def worker() -> None:
                while True:
                    try:
                        ctx, position, item = work.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    result = await self._one(graph, saver, ctx, dataset, item)
                    store.put(result, position)
                    self.on_event({"event": "record", "result": result})

            workers = min(self.config.concurrency, max(work.qsize(), 1))
            await asyncio.gather(*(worker() for _ in range(workers)))

    async def _one(
        self, graph: Any, saver: AsyncSqliteSaver, ctx: EvaluationContext, dataset: Dataset, item: Item
    ) -> Result:
        assert ctx.target is not None
        target = ctx.target.spec
        thread_id = f"{target}::{item.id}"
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id},
            "run_name": f"{item.id} · {target}",
            "tags": ["safebench", "evaluation"],
            "callbacks": list(self.callbacks),
            "metadata": {
                "safebench_run_id": self.run_id,
                "item_id": item.id,
                "scenario": item.scenario,
                "category": item.category,
                "target": target,
            },
        }
        try:
            snapshot = await graph.aget_state(config)
            if snapshot.values and not snapshot.next:
                state = snapshot.values  # finished before a crash, record not yet written
            else:
                # Resume from the checkpoint when there is one: finished nodes are not run again.
                case = build_case(item, dataset, self.config.modality, self.config.voice)
                payload = None if snapshot.next else {"item": item.model_dump(), "case": case}
                state = {}
                async for mode, chunk in graph.astream(
                    payload, config, context=ctx, stream_mode=["custom", "values"]
                ):
                    if mode == "values":
                        state = chunk
                    else:
                        self.on_event({**chunk, "target": target})
            result = to_result(item, target, state)
        except Exception as exc:  # one broken item must not stop the run: record it as an error
            result = to_result(item, target, {}, error=f"{type(exc).__name__}: {exc}")
        await saver.adelete_thread(thread_id)
        return result

    def _finish(self, store: RunStore, dataset: Dataset) -> RunOutcome:
        out = self.config.out
        targets = [t.spec for t in self.config.targets]
        records = 0
        with (out / RESULTS_FILE).open("w", encoding="utf-8") as fh:
            for result in store.ordered(targets):
                fh.write(json.dumps(result.model_dump(mode="json"), ensure_ascii=False) + "\n")
                records += 1
        metrics = compute_metrics(store.ordered(targets), dataset.taxonomy)
        write_metrics(metrics, out / METRICS_FILE)
        self.on_event({"event": "finish", "records": records, "metrics": metrics})
        return RunOutcome(run_dir=out, metrics=metrics, records=records, dataset=dataset)


async def evaluate_async(
    config: RunConfig,
    *,
    resume: bool = False,
    on_event: EventHandler | None = None,
    callbacks: list[BaseCallbackHandler] | None = None,
) -> RunOutcome:
    return await Evaluation(config, resume=resume, on_event=on_event, callbacks=callbacks).run()


def evaluate(
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    on_event: EventHandler | None = None,
    callbacks: list[BaseCallbackHandler] | None = None,
    **fields: Any,
) -> RunOutcome:
    """Run an evaluation from Python: `evaluate(out="runs/x", targets=["openai:gpt-4o"])`."""
    config = config or RunConfig.model_validate(fields)
    return asyncio.run(evaluate_async(config, resume=resume, on_event=on_event, callbacks=callbacks))
