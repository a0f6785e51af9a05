"""LangGraph checkpoints in PostgreSQL (safebench.checkpoint_pg) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import operator
import uuid
from typing import Annotated, TypedDict
from urllib.parse import quote

import pytest
from langgraph.graph import END, START, StateGraph
from postgres import PostgresServer, require_driver

require_driver()  # before anything that imports psycopg

import psycopg  # noqa: E402

from safebench.checkpoint_pg import postgres_checkpointer, thread_id  # noqa: E402
from safebench.store_url import StoreUnavailable  # noqa: E402


def run_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def assert_secret_free(text: str, server: PostgresServer) -> None:
    assert server.password not in text
    assert quote(server.password, safe="") not in text


class State(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]


async def test_checkpointer_threads_per_run_resume_and_delete(postgres_url: str) -> None:
    calls: list[str] = []
    fail = {"second": True}

    def first(state: State) -> State:
        calls.append("first")
        return {"steps": ["first"]}

    def second(state: State) -> State:
        calls.append("second")
        if fail["second"]:
            raise RuntimeError("worker died here")
        return {"steps": ["second"]}

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    run_a, run_b = run_name(), run_name()
    config_a = {"configurable": {"thread_id": thread_id(run_a, "target", "item-1")}}
    config_b = {"configurable": {"thread_id": thread_id(run_b, "target", "item-1")}}
    assert config_a["configurable"]["thread_id"] == f"{run_a}::target::item-1"

    async with postgres_checkpointer(postgres_url) as saver:
        graph = builder.compile(checkpointer=saver)
        with pytest.raises(RuntimeError, match="worker died"):
            await graph.ainvoke({"steps": []}, config_a)
        fail["second"] = False
        assert (await graph.ainvoke({"steps": []}, config_b))["steps"] == ["first", "second"]
        assert await saver.aget_tuple(config_a) is not None

    # Another worker (its own pool) resumes run A's item: `first` is not run again.
    calls.clear()
    async with postgres_checkpointer(postgres_url, max_connections=2) as saver:
        graph = builder.compile(checkpointer=saver)
        assert (await graph.ainvoke(None, config_a))["steps"] == ["first", "second"]
        assert calls == ["second"]
        await saver.adelete_thread(config_a["configurable"]["thread_id"])
        assert await saver.aget_tuple(config_a) is None
        assert await saver.aget_tuple(config_b) is not None  # the other run's thread is untouched
        # aput directly, as the saver's own API (the graph used it above too).
        tuple_b = await saver.aget_tuple(config_b)
        assert tuple_b is not None
        stored = await saver.aput(tuple_b.config, tuple_b.checkpoint, tuple_b.metadata, {})
        assert stored["configurable"]["thread_id"] == config_b["configurable"]["thread_id"]


async def test_checkpointer_setup_is_safe_when_workers_start_together(
    postgres_server: PostgresServer,
) -> None:
    database = f"fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{database}"

    async def one() -> bool:
        async with postgres_checkpointer(url, max_connections=1) as saver:
            return await saver.aget_tuple({"configurable": {"thread_id": "none"}}) is None

    assert await asyncio.gather(*(one() for _ in range(4))) == [True] * 4


async def test_checkpointer_unreachable_is_one_line(postgres_server: PostgresServer) -> None:
    url = postgres_server.url_for(password="nope")
    with pytest.raises(StoreUnavailable, match="password authentication") as caught:
        async with postgres_checkpointer(url):
            pass
    assert "\n" not in str(caught.value)
    assert_secret_free(str(caught.value), postgres_server)
