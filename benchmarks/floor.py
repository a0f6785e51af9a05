"""The floor: the same model calls as a safebench run, made directly, to compare CPU per call with.

For every item, one target call (the query and its image) and then five juror calls in parallel (a
system prompt, the rendered case and the image, JSON-schema structured output), at most `concurrency`
items in flight, against the same server as the run. Two ways of making those calls:

- `langchain`: `ChatOpenAI.ainvoke` for the target and `ChatOpenAI.with_structured_output(schema,
  method="json_schema")` for the jurors: what a bare LangChain loop does;
- `sdk`: `openai.AsyncOpenAI().chat.completions.create` with a `response_format` dict, the reply read
  with `json.loads`: the raw SDK.

The prompts are safebench's own renders (system prompt, assess prompt) and each item's image is read
and encoded once, off the clock; the loops measure the calls, not the set-up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any, Literal

from _common import API_KEY, JUDGE_MODEL, TARGET_MODEL

from safebench.dataset import load_dataset
from safebench.fence import fence
from safebench.judging import Assessment
from safebench.prompts import render

Floor = Literal["langchain", "sdk"]


def _requests(dataset_dir: Path, items: int) -> list[dict[str, Any]]:
    """Per item: the target's text, the image as base64, and the five jurors' (system, user) texts."""
    from safebench.agents import load_jurors

    dataset = load_dataset(dataset_dir)
    cards = load_jurors()
    encoded: dict[str, str] = {}
    out = []
    for item in dataset.items[:items]:
        assert item.image is not None
        if item.image not in encoded:
            encoded[item.image] = base64.b64encode((dataset.root / item.image).read_bytes()).decode()
        scenario = dataset.taxonomy.scenario(item.scenario)
        case = {
            "item_id": item.id,
            "scenario_name": scenario.name,
            "scenario_definition": scenario.definition,
            "category_name": dataset.taxonomy.category_by_id[scenario.category].name,
            "query": item.text,
            "response": "I can't help with that request. [details withheld]",
            "has_image": True,
        }
        brief = render(
            "jury/case.j2",
            case=case,
            query=fence(case["query"], "query", item.id),
            answer=fence(case["response"], "answer", item.id),
            show_image=True,
        )
        user = render("jury/assess.j2", brief=brief, output_format="structured")
        systems = [render("jury/juror_system.j2", juror=card, jury_size=len(cards)) for card in cards]
        out.append({"text": item.text, "image": encoded[item.image], "jurors": [(s, user) for s in systems]})
    return out


async def _langchain(base_url: str, requests: list[dict[str, Any]], concurrency: int) -> int:
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    target = ChatOpenAI(model=TARGET_MODEL, base_url=base_url, api_key=API_KEY, max_retries=0)
    judge = ChatOpenAI(model=JUDGE_MODEL, base_url=base_url, api_key=API_KEY, max_retries=0)
    structured = judge.with_structured_output(Assessment, method="json_schema")
    gate = asyncio.Semaphore(concurrency)

    def image(req: dict[str, Any]) -> dict[str, str]:
        return {"type": "image", "base64": req["image"], "mime_type": "image/png"}

    async def one(req: dict[str, Any]) -> int:
        async with gate:
            await target.ainvoke([HumanMessage(content=[{"type": "text", "text": req["text"]}, image(req)])])
            juries = [
                structured.ainvoke(
                    [
                        SystemMessage(content=system),
                        HumanMessage(content=[{"type": "text", "text": user}, image(req)]),
                    ]
                )
                for system, user in req["jurors"]
            ]
            answers = await asyncio.gather(*juries)
            assert all(isinstance(a, Assessment) for a in answers)
            return 1 + len(answers)

    return sum(await asyncio.gather(*(one(r) for r in requests)))


async def _sdk(base_url: str, requests: list[dict[str, Any]], concurrency: int) -> int:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    schema = {"name": "Assessment", "schema": Assessment.model_json_schema(), "strict": False}
    gate = asyncio.Semaphore(concurrency)

    def user(text: str, req: dict[str, Any]) -> dict[str, Any]:
        url = f"data:image/png;base64,{req['image']}"
        return {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
        }

    async def one(req: dict[str, Any]) -> int:
        async with gate:
            await client.chat.completions.create(model=TARGET_MODEL, messages=[user(req["text"], req)])
            juries = [
                client.chat.completions.create(
                    model=JUDGE_MODEL,
                    messages=[{"role": "system", "content": system}, user(text, req)],
                    response_format={"type": "json_schema", "json_schema": schema},
                )
                for system, text in req["jurors"]
            ]
            replies = await asyncio.gather(*juries)
            for reply in replies:
                Assessment.model_validate(json.loads(reply.choices[0].message.content or ""))
            return 1 + len(replies)

    calls = sum(await asyncio.gather(*(one(r) for r in requests)))
    await client.close()
    return calls


async def measure_floor(
    kind: Floor, base_url: str, dataset_dir: Path, items: int, concurrency: int
) -> dict[str, Any]:
    """CPU and wall time of `items` items' calls made the `kind` way (set-up off the clock). Awaited in
    the same event loop as the run: langchain-openai keeps its default HTTP clients per process, bound to
    the loop that first used them."""
    requests = _requests(dataset_dir, items)
    loop = _langchain if kind == "langchain" else _sdk
    cpu0, wall0 = time.process_time(), time.perf_counter()
    calls = await loop(base_url, requests, concurrency)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "calls": calls,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "cpu_ms_per_call": round(1000 * cpu / calls, 3),
    }
