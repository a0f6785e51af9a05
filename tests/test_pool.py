"""The model pool: one model object per model config across targets and jurors, so a rate limit is per
model and five `hf:` jurors on one model share one batcher; plus the jury's quorum and foreperson rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter

from graphs.context import JuryContext, jury_agents, jury_context
from graphs.jury import graph
from safebench.agents import load_jurors
from safebench.config import ConfigError, JurorConfig, JuryConfig
from safebench.models import ModelConfig
from safebench.providers import hf
from safebench.providers.pool import ModelPool, default_pool
from safebench.providers.scripted import COMPLIANCE
from safebench.retry import RetryPolicy
from safebench.targets import ChatTarget, create_target
from tests.test_jury import case

pytest_plugins = ["tests.tiny_models"]

SERVER = "http://127.0.0.1:9/v1"  # never called: building a ChatOpenAI makes no request


def _server(**settings: Any) -> ModelConfig:
    return ModelConfig(**{"spec": "openai:judge", "base_url": SERVER, "requests_per_second": 2, **settings})


def _jury(*models: ModelConfig, **settings: Any) -> JuryConfig:
    cards = [card.id for card in load_jurors()]
    return JuryConfig(
        jurors=[JurorConfig(card=c, model=m) for c, m in zip(cards, models, strict=False)], **settings
    )


def test_jurors_on_one_config_share_one_model_and_rate_limiter() -> None:
    # Equal but for settings that only change how a model is used: still one model.
    configs = [
        _server(),
        _server(),
        _server(multimodal=False),
        _server(output="text"),
        _server(output="function_calling", multimodal=False),
    ]
    pool = ModelPool()
    jurors, _ = jury_agents(_jury(*configs), pool)

    (model,) = {id(j.model): j.model for j in jurors}.values()
    assert isinstance(model.rate_limiter, InMemoryRateLimiter)
    assert model.rate_limiter.requests_per_second == 2
    # Each juror keeps its own use settings; only the model object is shared.
    assert [j.config.output for j in jurors] == ["auto", "auto", "auto", "text", "function_calling"]


def test_a_target_on_a_jurors_config_shares_its_model() -> None:
    pool = ModelPool()
    jurors, _ = jury_agents(_jury(*[_server()] * 5), pool)
    target = create_target(_server(label="judge-as-target"), pool)
    assert isinstance(target, ChatTarget)
    assert target.model is jurors[0].model
    assert target.label == "judge-as-target"


def test_another_base_url_or_setting_is_another_model() -> None:
    pool = ModelPool()
    here = pool.chat(_server())
    there = pool.chat(_server(base_url="http://127.0.0.1:10/v1"))
    hotter = pool.chat(_server(temperature=0.7))
    assert len({id(here), id(there), id(hotter)}) == 3
    assert here.rate_limiter is not there.rate_limiter
    assert pool.models() == [here, there, hotter]


def test_different_api_keys_are_different_clients() -> None:
    # Saved configs mask keys as "***"; the pool must not mistake two keys for one.
    pool = ModelPool()
    a = pool.chat(_server(api_key="key-a"))
    b = pool.chat(_server(api_key="key-b"))
    assert a is not b and pool.chat(_server(api_key="key-a")) is a


def test_the_pool_given_is_the_pool_used() -> None:
    config = ModelConfig(spec="scripted:juror", requests_per_second=4)
    pool = ModelPool()  # empty: it must not be mistaken for "no pool"
    jurors, foreperson = jury_agents(JuryConfig(model=config), pool)
    assert pool.models() == [jurors[0].model]
    assert foreperson.model is jurors[0].model is not default_pool().chat(config)


def test_callers_without_a_pool_share_the_default_one() -> None:
    config = ModelConfig(spec="scripted:juror", requests_per_second=3)
    jurors, _ = jury_agents(JuryConfig(model=config))
    assert all(j.model is default_pool().chat(config) for j in jurors)
    assert create_target(config).model is jurors[0].model  # type: ignore[attr-defined]


async def test_requests_per_second_is_per_model_not_per_juror(monkeypatch: pytest.MonkeyPatch) -> None:
    acquired: list[InMemoryRateLimiter] = []

    async def count(self: InMemoryRateLimiter, *, blocking: bool = True) -> bool:
        acquired.append(self)
        return True  # no waiting: the test counts acquisitions, it does not time them

    monkeypatch.setattr(InMemoryRateLimiter, "aacquire", count)
    config = ModelConfig(spec="scripted:juror", requests_per_second=2)
    ctx = JuryContext(**jury_context(JuryConfig(model=config, deliberate="never"), pool=ModelPool()))  # type: ignore[arg-type]

    out = await graph.ainvoke({"case": case(COMPLIANCE)}, context=ctx)

    assert out["calls"] == 5
    assert len(acquired) == 5 and len({id(limiter) for limiter in acquired}) == 1
    assert acquired[0] is ctx.jurors[0].model.rate_limiter
    assert acquired[0].requests_per_second == 2


async def test_five_hf_jurors_on_one_model_are_batched_together(
    tiny_llava_path: Path, generate_calls: list[dict[str, Any]]
) -> None:
    # batch_size 5 and a long window: the batch goes when all five have arrived, at once if they share
    # one batcher (a batcher per juror would wait out the window and generate five times).
    config = ModelConfig(spec=f"hf:{tiny_llava_path}", max_tokens=2, batch_size=5, output="text")
    jury = JuryConfig(model=config, deliberate="never", reasks=0)
    ctx = JuryContext(**jury_context(jury, RetryPolicy(initial_delay=0), ModelPool()))  # type: ignore[arg-type]
    models = {id(j.model): j.model for j in ctx.jurors}
    assert len(models) == 1
    (model,) = models.values()
    assert isinstance(model, hf.HFChatModel)
    model.batch_window = 10.0

    out = await graph.ainvoke({"case": case()}, context=ctx)

    # A random-weight model's replies do not parse: the jurors abstain, which is not what is tested.
    assert [op["round"] for op in out["opinions"]] == [0] * 5
    assert out["calls"] == 5
    (call,) = generate_calls
    assert call["input_ids"].shape[0] == 5


def test_quorum_larger_than_the_jury_is_rejected_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"quorum 6 .* jury size 5"):
        jury_agents(JuryConfig(quorum=6))
    with pytest.raises(ConfigError, match=r"quorum 3 .* jury size 2"):
        jury_context(_jury(_server(), _server(), quorum=3), pool=ModelPool())
    jurors, _ = jury_agents(JuryConfig(quorum=5), ModelPool())
    assert len(jurors) == 5


def test_the_jury_model_also_seats_the_foreperson() -> None:
    pool = ModelPool()
    jurors, foreperson = jury_agents(JuryConfig(model=_server()), pool)
    assert foreperson.config.spec == "openai:judge"
    assert foreperson.model is jurors[0].model
    # An explicit foreperson wins; without `model` the foreperson keeps its card's model.
    _, own = jury_agents(JuryConfig(model=_server(), foreperson="scripted:foreperson"), pool)
    assert own.config.spec == "scripted:foreperson"
    _, default = jury_agents(JuryConfig(), pool)
    assert default.config.spec == default.card.model
