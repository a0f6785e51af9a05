"""Run an evaluation: every (target, item) through the evaluation graph, concurrently, resumably.

UI stays outside: progress is reported through `on_event(dict)` callbacks fed by the graph's stream.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig

from graphs.context import EvaluationContext, jury_context
from graphs.evaluation import build_evaluation_graph
from safebench.checkpoint_sqlite import CheckpointFiles, delete_thread, discard_checkpoints, started_threads
from safebench.config import ConfigError, RunConfig
from safebench.dataset import Dataset, load_dataset, resolve_dataset_dir
from safebench.dataset.validate import DatasetUnsuitable, check_modality
from safebench.event_loop import run_sync
from safebench.image_conditions import check as check_condition
from safebench.image_conditions import prepare_images, run_seed
from safebench.models import ModelConfig
from safebench.providers.pool import ModelPool
from safebench.run_info import RunInfo
from safebench.run_metrics import jury_confusion, run_metrics
from safebench.run_records import build_case, to_result
from safebench.run_setup import CONFIG_FILE, Resolved, check_models, check_stand_ins, identity, saved_config
from safebench.schema import Item, Result
from safebench.store import RunStore
from safebench.targets import create_target

Event = dict[str, Any]
EventHandler = Callable[[Event], None]

RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Task:
    """One (target, item) left to evaluate. `held`: the slot whose checkpoint file holds its thread
    (None: not started)."""

    target: str
    position: int
    item_id: str
    held: int | None = None


def thread_id(target: str, item_id: str) -> str:
    """The checkpoint thread of one (target, item) of a local run."""
    return f"{target}::{item_id}"


@dataclass
class RunOutcome:
    run_dir: Path
    metrics: dict[str, Any]
    records: int
    dataset: Dataset
    counts: dict[str, int] = field(default_factory=dict)  # records by verdict status
    report: Path | None = None  # RUN_DIR/report.html, when it could be written
    report_error: str | None = None  # why not: the records and metrics are saved regardless

    @property
    def errors(self) -> int:
        return self.counts.get("error", 0)


class Evaluation:
    """One run directory: its store, its checkpointer and the work left to do."""

    def __init__(
        self,
        config: RunConfig,
        *,
        resume: bool = False,
        retry_errors: bool = False,
        on_event: EventHandler | None = None,
        callbacks: list[BaseCallbackHandler] | None = None,
        argv: list[str] | None = None,
    ) -> None:
        self.config = config
        self.resume = resume or retry_errors
        self.retry_errors = retry_errors  # rerun exactly the records whose status is `error`
        self.on_event = on_event or (lambda _e: None)
        # Extra LangChain callback handlers for each item's trace (LangSmith needs none: env vars do it).
        self.callbacks = callbacks or []
        self.argv = argv  # the command line, saved redacted in run.json
        self.run_id = str(uuid.uuid4())
        self.pool = ModelPool()  # one model object per distinct model config, for the whole run
        self._dataset: Dataset | None = None
        self._resolved: Resolved | None = None

    def prepare(self) -> Dataset:
        """Everything that can fail on bad input, before any model call: stand-ins, dataset, models.
        Done once: the CLI prepares before `run`, and validating a large dataset decodes every image."""
        if self._dataset is not None:
            return self._dataset
        dataset = load_dataset(resolve_dataset_dir(self.config.dataset))
        items = self.items(dataset)
        unsuitable = check_modality(
            dataset.root, self.config.modality, self.config.voice, {item.id for item in items}
        )
        if unsuitable:
            raise DatasetUnsuitable(unsuitable, dataset.root, self.config.modality)
        check_condition(items, dataset, self.config.image_condition)  # reads no image: before any call
        if self.config.processes > 1 and self.callbacks:
            # Handler objects cannot follow items into other processes; LangSmith (environment) can.
            raise ConfigError("callbacks need processes=1: the other processes' items would not reach them")
        self._resolved = check_models(self.config)
        check_stand_ins(self.config)
        if self.config.calibration is not None:
            jury_confusion(self.config.calibration)  # a bad calibration file stops the run before any call
        self._dataset = dataset
        return dataset

    def adopt(self, dataset: Dataset, resolved: Resolved) -> None:
        """Take what an Evaluation of the same config prepared: a --processes child neither validates
        every file again nor repeats the preflights."""
        self._dataset, self._resolved = dataset, resolved

    def items(self, dataset: Dataset) -> list[Item]:
        """The items this run evaluates (the first `limit`, if set)."""
        return dataset.items[: self.config.limit] if self.config.limit else dataset.items

    def contexts(self, targets: list[ModelConfig] | None = None) -> list[EvaluationContext]:
        """One graph context per target (default: all of the run's), all sharing one jury."""
        retry = self.config.retry.policy()
        shared = jury_context(self.config.jury, retry, pool=self.pool)
        modality = self.config.modality
        return [
            EvaluationContext(**shared, target=create_target(t, pool=self.pool), modality=modality)  # type: ignore[arg-type]
            for t in (self.config.targets if targets is None else targets)
        ]

    async def make_condition_images(self, dataset: Dataset) -> None:
        """Every image of the run's image condition, written before the first model call."""
        cfg = self.config
        if cfg.modality == "image":
            args = (self.items(dataset), dataset, cfg.image_condition, run_seed(cfg), cfg.out)
            await asyncio.to_thread(prepare_images, *args)

    @property
    def resolved(self) -> Resolved:
        """The run's models slot by slot and its stand-ins (after `prepare`)."""
        self.prepare()
        assert self._resolved is not None
        return self._resolved

    async def run(self) -> RunOutcome:
        # Validation reads and decodes files: off the event loop (a caller's loop may be running other work).
        dataset = await asyncio.to_thread(self.prepare)
        items = self.items(dataset)
        out = self.config.out
        store = RunStore(out)
        try:
            store.lock()
            store.claim(identity(self.config), resume=self.resume)
            await self.make_condition_images(dataset)  # after the claim: a refused resume leaves no files
            saved = {**self.config.public_dict(), "resolved": self.resolved.public}
            (out / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False, allow_unicode=True))
            info = RunInfo(out)
            info.start(dataset, self.resolved.models, self.argv)
            await self._evaluate(store, dataset, items)
            outcome = self._finish(store, dataset)
            info.finish(outcome.counts)
            write_report(outcome)
            return outcome
        finally:
            store.close()

    async def _evaluate(self, store: RunStore, dataset: Dataset, items: list[Item]) -> None:
        contexts = self.contexts()
        held = started_threads(self.config.out)
        tasks: list[Task] = []
        total = 0
        for ctx in contexts:
            assert ctx.target is not None
            label = ctx.target.label
            statuses = store.statuses(label)
            for position, item in enumerate(items):
                total += 1
                status = statuses.get(item.id)
                if status is None or (status == "error" and self.retry_errors):
                    thread = thread_id(label, item.id)
                    if status is not None and thread in held:  # a retried error starts over
                        delete_thread(self.config.out, held.pop(thread), thread)
                    tasks.append(Task(label, position, item.id, held.get(thread)))
        self.on_event({"event": "start", "total": total, "done": total - len(tasks), "run_id": self.run_id})

        if self.config.processes > 1 and len(tasks) > 1:
            from safebench.processes import work_in_processes

            await work_in_processes(self, store, dataset, contexts, tasks)
        else:
            queue = iter(tasks)

            async def take() -> Task | None:
                return next(queue, None)

            def deliver(result: Result, position: int) -> None:
                self.record(store, result, position)

            workers = min(self.config.concurrency, max(len(tasks), 1))
            await self.work(dataset, contexts, take, deliver, slot=0, workers=workers)
        # Reached only when every queued item has its record (an interrupt or a failed write raises
        # instead): nothing is left to resume, so the checkpoints go at once rather than item by item.
        discard_checkpoints(self.config.out)

    def record(self, store: RunStore, result: Result, position: int, slot: int = 0) -> None:
        """Put one record (made in process `slot`) in the store and tell the display. The record is the
        item's durable end: its checkpoint is scratch from here on (a resume never queues a recorded
        item) and goes with the others once every item has its record."""
        store.put(result, position)
        self.on_event({"event": "record", "result": result, "slot": slot})

    async def work(
        self,
        dataset: Dataset,
        contexts: list[EvaluationContext],
        take: Callable[[], Awaitable[Task | None]],
        deliver: Callable[[Result, int], None],
        *,
        slot: int,
        workers: int,
    ) -> None:
        """Evaluate the tasks `take` gives until it gives None, `workers` at a time, handing each record
        to `deliver`. New threads are checkpointed in this process's `slot` file; a thread another
        file holds resumes there."""
        by_label = {ctx.target.label: ctx for ctx in contexts if ctx.target is not None}
        items = {item.id: item for item in self.items(dataset)}
        files = CheckpointFiles(self.config.out, slot)
        graphs: dict[int, Any] = {}

        def graph(held: int) -> Any:
            if held not in graphs:
                saver = files.saver(held)
                graphs[held] = build_evaluation_graph().compile(checkpointer=saver, name="evaluation")
            return graphs[held]

        async def worker() -> None:
            while (task := await take()) is not None:
                thread = thread_id(task.target, task.item_id)
                held = task.held
                ctx, item = by_label[task.target], items[task.item_id]
                result = await self.one(
                    graph(slot if held is None else held), ctx, dataset, item, thread, held is not None
                )
                deliver(result, task.position)

        try:
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            files.close()

    async def one(
        self, graph: Any, ctx: EvaluationContext, dataset: Dataset, item: Item, thread_id: str, started: bool
    ) -> Result:
        """One (target, item) through the graph; `started`: the thread has a checkpoint to resume from."""
        target = ctx.target
        assert target is not None
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id},
            "run_name": f"{item.id} · {target.label}",
            "tags": ["safebench", "evaluation"],
            "callbacks": list(self.callbacks),
            "metadata": {
                "safebench_run_id": self.run_id,
                "item_id": item.id,
                "scenario": item.scenario,
                "category": item.category,
                "target": target.label,
                "target_spec": target.spec,
            },
        }
        modality = self.config.modality
        condition = self.config.image_condition if modality == "image" else None
        try:
            snapshot = await graph.aget_state(config) if started else None
            if snapshot and snapshot.values and not snapshot.next and not snapshot.values.get("verdict"):
                # A kill -9 can leave a checkpoint with nothing left to run and no verdict (the writes
                # of its last step were lost): start the item over rather than record "no verdict".
                await graph.checkpointer.adelete_thread(thread_id)
                snapshot = None
            if snapshot and snapshot.values and not snapshot.next:
                state = snapshot.values  # finished before a crash, record not yet written
            else:
                # Resume from the checkpoint when there is one: finished nodes are not run again.
                cfg = self.config
                case = build_case(
                    item,
                    dataset,
                    modality,
                    cfg.voice,
                    image_condition=cfg.image_condition,
                    run_dir=cfg.out,
                    seed=run_seed(cfg),
                )
                resuming = snapshot is not None and bool(snapshot.next)
                payload = None if resuming else {"item": item.model_dump(), "case": case}
                state = {}
                async for mode, chunk in graph.astream(
                    payload, config, context=ctx, stream_mode=["custom", "values"]
                ):
                    if mode == "values":
                        state = chunk
                    else:
                        self.on_event({**chunk, "target": target.label})
            return to_result(item, target, state, modality, image_condition=condition)
        except Exception as exc:  # one broken item must not stop the run: record it as an error
            return self.error_result(ctx, item, f"{type(exc).__name__}: {exc}")

    def error_result(self, ctx: EvaluationContext, item: Item, error: str) -> Result:
        """The `error` record of an item that has no answer or verdict (retried by --retry-errors)."""
        assert ctx.target is not None
        modality = self.config.modality
        condition = self.config.image_condition if modality == "image" else None
        return to_result(item, ctx.target, {}, modality, error, condition)

    def _finish(self, store: RunStore, dataset: Dataset) -> RunOutcome:
        return finish_run(store, self.config, dataset, self.resolved, self.on_event)


def write_results(store: Any, labels: list[str], path: Path) -> int:
    """`results.jsonl`: every record, target by target in item order; returns how many."""
    records = 0
    with path.open("w", encoding="utf-8") as fh:
        for result in store.ordered(labels):
            fh.write(json.dumps(result.model_dump(mode="json"), ensure_ascii=False) + "\n")
            records += 1
    return records


def finish_run(
    store: Any, config: RunConfig, dataset: Dataset, resolved: Resolved, on_event: EventHandler
) -> RunOutcome:
    """results.jsonl and metrics.json in `config.out` from the store (SQLite or PostgreSQL)."""
    out = config.out
    records = write_results(store, [t.id for t in config.targets], out / RESULTS_FILE)
    metrics = run_metrics(store, config, dataset.taxonomy, resolved)
    counts = store.status_counts()
    on_event({"event": "finish", "records": records, "metrics": metrics, "counts": counts})
    return RunOutcome(run_dir=out, metrics=metrics, records=records, dataset=dataset, counts=counts)


def write_report(outcome: RunOutcome) -> None:
    """RUN_DIR/report.html from the saved files. Presentation only: if it fails, the run's records and
    metrics stand and the outcome says why there is no page."""
    try:
        from safebench.html_report import build_report

        outcome.report = build_report([outcome.run_dir], outcome.run_dir / REPORT_FILE)
    except Exception as exc:  # any failure to draw the page must not fail a finished run
        outcome.report_error = f"{type(exc).__name__}: {exc}"


async def evaluate_async(
    config: RunConfig,
    *,
    resume: bool = False,
    retry_errors: bool = False,
    on_event: EventHandler | None = None,
    callbacks: list[BaseCallbackHandler] | None = None,
) -> RunOutcome:
    evaluation = Evaluation(
        config, resume=resume, retry_errors=retry_errors, on_event=on_event, callbacks=callbacks
    )
    return await evaluation.run()


def evaluate(
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    retry_errors: bool = False,
    on_event: EventHandler | None = None,
    callbacks: list[BaseCallbackHandler] | None = None,
    **fields: Any,
) -> RunOutcome:
    """Run an evaluation from Python: `evaluate(out="runs/x", targets=["openai:gpt-4o"],
    jury={"model": "openai:gpt-4o"})`. With `resume=True` and only `out`, the run saved there goes on."""
    if config is None:
        resuming = (resume or retry_errors) and set(fields) == {"out"}
        config = saved_config(Path(fields["out"])) if resuming else RunConfig.model_validate(fields)
    coroutine = evaluate_async(
        config, resume=resume, retry_errors=retry_errors, on_event=on_event, callbacks=callbacks
    )
    return run_sync(coroutine)
