"""The event loop every safebench command runs on: uvloop's where it is installed (a dependency on Linux
and macOS), else asyncio's own.

A run against a fast local server is bound by the CPU of one event loop (benchmarks/README.md, issue
10); uvloop's loop takes about 13 % less CPU per model call there. `SAFEBENCH_EVENT_LOOP=asyncio`
keeps asyncio's loop, for asyncio's debug mode or a library that does not work on uvloop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LOOP_ENV", "new_event_loop", "run", "run_sync"]

LOOP_ENV = "SAFEBENCH_EVENT_LOOP"
T = TypeVar("T")


def _factory() -> Callable[[], asyncio.AbstractEventLoop]:
    if os.environ.get(LOOP_ENV, "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # Windows, PyPy, or installed without it
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    return _factory()()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on safebench's loop (Ctrl-C cancels the coroutine, as there)."""
    with asyncio.Runner(loop_factory=_factory()) as runner:
        return runner.run(coroutine)


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to the end, also from code that already runs an event loop (a Jupyter cell),
    where asyncio.run refuses: then on a fresh loop in a worker thread, waited for here. An interrupt
    while waiting (the kernel's "Interrupt") cancels the run at once instead of waiting for its end."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run(coroutine)
    loop = new_event_loop()
    task = loop.create_task(coroutine)

    finished = threading.Event()

    def drive() -> None:
        try:
            loop.run_until_complete(task)
        except BaseException:  # the outcome is read from `task` by the waiting thread
            pass
        finally:
            loop.close()
            finished.set()

    threading.Thread(target=drive, name="safebench-run", daemon=True).start()
    try:
        # An Event, not Thread.join: a join interrupted by KeyboardInterrupt leaves the thread marked as
        # stopped while it still runs (CPython), so a second join would not wait for the cancellation.
        while not finished.wait(0.1):
            pass
    except BaseException:
        loop.call_soon_threadsafe(task.cancel)
        finished.wait()
        raise
    return task.result()
