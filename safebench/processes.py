"""One local run worked by several processes (`--processes N`): past one CPU core's worth of
orchestration.

Against a fast local server (vLLM, llama.cpp) one event loop is CPU-bound: LangGraph, LangChain and
the openai SDK take a few ms of CPU per model call (benchmarks/README.md). The run's own process
(slot 0) starts on its items at once; N - 1 child processes join it (forked on Linux, see
`start_method`) with the dataset and models it prepared. Every process takes the next item from the
run's process when it has room, so a child that starts late or is slow takes fewer. Records come back
to the run's process, the one writer of the store and of the display. Each process checkpoints the
threads it starts in its own file; a resume, with any number of processes, resumes each thread in the
file that holds it. If a child dies, the items it had in flight go back in the queue and resume from
its checkpoints, so what it had finished is not bought again.

Messages, over two one-way pipes per child, read from the event loops (`add_reader`):
child → run: ("take",) · ("event", dict) · ("record", position, result JSON);
run → child: ("task", Task | None).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import os
import sys
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from safebench import event_loop
from safebench.config import RunConfig
from safebench.models import ModelConfig
from safebench.schema import Result

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from graphs.context import EvaluationContext
    from safebench.dataset import Dataset
    from safebench.run_setup import Resolved
    from safebench.runner import Evaluation, Task
    from safebench.store import RunStore

__all__ = ["shares", "start_method", "work_in_processes"]


def start_method(models: list[ModelConfig]) -> str:
    """`fork` on Linux: a child is ready in milliseconds rather than the seconds a fresh interpreter
    takes to import LangChain and LangGraph (most of a short run). `spawn` elsewhere (macOS's system
    libraries are not fork-safe) and for runs with a local `hf:` model, whose torch thread pools a
    fork would copy mid-state."""
    local = any(model.spec.startswith("hf:") for model in models)
    return "fork" if sys.platform == "linux" and not local else "spawn"


def shares(concurrency: int, processes: int) -> list[int]:
    """Items in flight per process, the run's own first: the run's concurrency, split as evenly as it goes."""
    base, extra = divmod(concurrency, processes)
    return [base + (1 if slot < extra else 0) for slot in range(processes)]


@dataclass
class _Child:
    slot: int
    process: BaseProcess
    tasks: Connection  # run → child
    results: Connection  # child → run
    gone: asyncio.Future[None]
    in_flight: dict[tuple[str, str], Task] = field(default_factory=dict)


async def work_in_processes(
    evaluation: Evaluation,
    store: RunStore,
    dataset: Dataset,
    contexts: list[EvaluationContext],
    tasks: list[Task],
) -> None:
    """Evaluate `tasks` in this process and `processes - 1` children; every record is put in `store`
    by this process. A failed record write stops the run, as in one process."""
    config = evaluation.config
    context = multiprocessing.get_context(start_method(evaluation.resolved.models))
    split = [n for n in shares(config.concurrency, min(config.processes, len(tasks))) if n]
    queue = collections.deque(tasks)
    loop = asyncio.get_running_loop()

    def record(result: Result, position: int) -> None:
        evaluation.record(store, result, position)

    def handle(child: _Child, message: tuple[Any, ...]) -> None:
        if message[0] == "take":
            task = queue.popleft() if queue else None
            if task is not None:
                child.in_flight[(task.target, task.item_id)] = task
            child.tasks.send(("task", task))
        elif message[0] == "event":
            evaluation.on_event(message[1])
        else:  # "record"
            result = Result.model_validate_json(message[2])
            child.in_flight.pop((result.target, result.item_id), None)
            evaluation.record(store, result, message[1], child.slot)

    def on_message(child: _Child) -> None:
        try:
            while child.results.poll():
                handle(child, child.results.recv())
        except (EOFError, OSError):  # the child is gone: finished, or died
            loop.remove_reader(child.results.fileno())
            lost = list(child.in_flight.values())
            child.in_flight.clear()
            if lost:
                # They resume from the file of whoever checkpointed them: no finished call is bought twice.
                queue.extend(replace(t, held=child.slot if t.held is None else t.held) for t in lost)
                evaluation.on_event({"event": "process", "slot": child.slot, "requeued": len(lost)})
            if not child.gone.done():
                child.gone.set_result(None)
        except Exception as exc:  # a failed record write: the run stops, as it does in one process
            loop.remove_reader(child.results.fileno())
            if not child.gone.done():
                child.gone.set_exception(exc)

    children: list[_Child] = []
    try:
        for slot, share in enumerate(split[1:], start=1):
            from_run, to_child = context.Pipe(duplex=False)  # (receiving end, sending end)
            from_child, to_run = context.Pipe(duplex=False)
            process = context.Process(  # type: ignore[attr-defined]
                target=child_main,
                args=(config, evaluation.run_id, dataset, evaluation.resolved, slot, share, from_run, to_run),
                name=f"safebench-{slot}",
                daemon=True,
            )
            process.start()
            from_run.close()
            to_run.close()
            child = _Child(slot, process, to_child, from_child, loop.create_future())
            loop.add_reader(from_child.fileno(), on_message, child)
            children.append(child)

        pids = [os.getpid(), *(child.process.pid for child in children)]
        evaluation.on_event({"event": "processes", "pids": pids})

        async def take() -> Task | None:
            return queue.popleft() if queue else None

        async with asyncio.TaskGroup() as group:
            group.create_task(evaluation.work(dataset, contexts, take, record, slot=0, workers=split[0]))
            for child in children:
                group.create_task(_until(child.gone))
        if queue:  # what a child that died had in flight, once every child is gone: finish it here
            await evaluation.work(dataset, contexts, take, record, slot=0, workers=split[0])
        for child in children:  # each has closed its pipe: it is exiting
            await asyncio.to_thread(child.process.join, 30)
    finally:
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
            child.process.join()
            loop.remove_reader(child.results.fileno())
            child.results.close()
            child.tasks.close()


def child_main(
    config: RunConfig,
    run_id: str,
    dataset: Dataset,
    resolved: Resolved,
    slot: int,
    share: int,
    tasks: Connection,
    results: Connection,
) -> None:
    """A child process: the run's prepared dataset and models (validated and preflighted once, by the
    run's process), then what it is given to evaluate."""
    from safebench.runner import Evaluation

    evaluation = Evaluation(config)
    evaluation.run_id = run_id  # one run in the traces, whichever process made them
    evaluation.adopt(dataset, resolved)
    # Ctrl-C reaches every process of the run; the run's process reports it.
    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(_child(evaluation, dataset, slot, share, tasks, results))


async def _until(gone: asyncio.Future[None]) -> None:
    await gone


async def _child(
    evaluation: Evaluation, dataset: Dataset, slot: int, share: int, tasks: Connection, results: Connection
) -> None:
    contexts = evaluation.contexts()
    loop = asyncio.get_running_loop()
    waiting: collections.deque[asyncio.Future[Task | None]] = collections.deque()
    parent = os.getppid()

    def on_task() -> None:
        try:
            while tasks.poll():
                _, task = tasks.recv()
                if waiting:
                    waiting.popleft().set_result(task)
        except (EOFError, OSError):  # the run's process is gone: finish what is in flight, take no more
            loop.remove_reader(tasks.fileno())
            while waiting:
                waiting.popleft().set_result(None)

    loop.add_reader(tasks.fileno(), on_task)

    async def take() -> Task | None:
        if os.getppid() != parent:
            return None
        future: asyncio.Future[Task | None] = loop.create_future()
        waiting.append(future)
        results.send(("take",))
        return await future

    def deliver(result: Result, position: int) -> None:
        results.send(("record", position, result.model_dump_json()))

    evaluation.on_event = lambda event: results.send(("event", event))
    try:
        await evaluation.work(dataset, contexts, take, deliver, slot=slot, workers=share)
    finally:
        loop.remove_reader(tasks.fileno())
