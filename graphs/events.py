"""Progress events: nodes emit them on the custom stream, the Python APIs hand them to `on_event`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.pregel import Pregel

EventHandler = Callable[[dict[str, Any]], None]


def emit(event: dict[str, Any]) -> None:
    """Send `event` on the run's custom stream; a no-op outside a graph run (unit tests of a node)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)


async def run_streaming(
    graph: Pregel[Any, Any, Any, Any],
    payload: Any,
    *,
    context: Any,
    config: RunnableConfig | None,
    on_event: EventHandler | None,
) -> dict[str, Any]:
    """Run `graph` to the end and return its final state, passing every custom event (subgraphs'
    included) to `on_event` as it comes."""
    state: dict[str, Any] = {}
    async for namespace, mode, chunk in graph.astream(
        payload, config, context=context, stream_mode=["custom", "values"], subgraphs=True
    ):
        if mode == "custom":
            if on_event is not None:
                on_event(chunk)
        elif not namespace:  # a subgraph's values are its own state, not the run's
            state = chunk
    return state
