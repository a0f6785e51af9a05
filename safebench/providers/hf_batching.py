"""Micro-batching: gather concurrent async requests into one blocking batch call in a worker thread.

The runner calls a target from many asyncio tasks; a local model is far faster generating one padded
batch than N single prompts, and the blocking call must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass
class _Pending:
    group: Hashable
    request: Any
    future: asyncio.Future[Any]


@dataclass
class _LoopState:
    pending: list[_Pending] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None


class MicroBatcher(Generic[Req, Res]):
    """Run `run_batch(requests) -> results` (same order) on batches of up to `max_batch` requests.

    Only requests of the same `group` (e.g. the same generation settings) share a batch. After the first
    request of an idle spell arrives, the batcher waits up to `window` seconds for the batch to fill;
    requests arriving while a batch generates form the next one.
    """

    def __init__(
        self, run_batch: Callable[[list[Req]], list[Res]], max_batch: int, window: float = 0.02
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.window = window
        # asyncio primitives belong to one event loop; a model may be used from several (tests, asyncio.run).
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, request: Req, group: Hashable = None) -> Res:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        future: asyncio.Future[Res] = loop.create_future()
        state.pending.append(_Pending(group, request, future))
        state.arrived.set()
        if state.worker is None or state.worker.done():
            state.worker = loop.create_task(self._drain(state))
        return await future

    async def _drain(self, state: _LoopState) -> None:
        while True:
            self._drop_cancelled(state)
            if not state.pending:
                return
            await self._fill(state)
            batch = self._take(state)
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self._run_batch, [p.request for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} requests")
            except asyncio.CancelledError:
                for p in [*batch, *state.pending]:
                    p.future.cancel()
                raise
            except Exception as exc:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():  # the caller may have been cancelled meanwhile
                    p.future.set_result(result)

    async def _fill(self, state: _LoopState) -> None:
        if self.max_batch == 1:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window
        while self._ready(state) < self.max_batch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            state.arrived.clear()
            try:
                await asyncio.wait_for(state.arrived.wait(), remaining)
            except TimeoutError:
                return

    def _ready(self, state: _LoopState) -> int:
        """How many live requests share the group of the oldest one."""
        self._drop_cancelled(state)
        if not state.pending:
            return 0
        group = state.pending[0].group
        return sum(1 for p in state.pending if p.group == group)

    def _take(self, state: _LoopState) -> list[_Pending]:
        self._drop_cancelled(state)
        if not state.pending:
            return []
        group = state.pending[0].group
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        for p in state.pending:
            (batch if p.group == group and len(batch) < self.max_batch else rest).append(p)
        state.pending[:] = rest
        return batch

    @staticmethod
    def _drop_cancelled(state: _LoopState) -> None:
        state.pending[:] = [p for p in state.pending if not p.future.done()]
