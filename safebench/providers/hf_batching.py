"""Batching for local models: gather concurrent async requests into one blocking batch call in a worker
thread (MicroBatcher), and generate for a batch of conversations in one padded `generate` (generate_batch).

The runner calls a target from many asyncio tasks; a local model is far faster generating one padded
batch than N single prompts, and the blocking call must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from safebench.providers.hf import LoadedModel

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
    requests arriving while a batch generates form the next one. An exception *returned* in a request's
    slot fails that request alone (one the model cannot take); one raised fails the whole batch.
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
                if p.future.done():  # the caller may have been cancelled meanwhile
                    continue
                if isinstance(result, BaseException):
                    p.future.set_exception(result)
                else:
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


# --- generation ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    temperature: float


@dataclass
class Generated:
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str


def generate_batch(
    loaded: LoadedModel, conversations: list[list[dict[str, Any]]], settings: GenerationSettings
) -> list[Generated]:
    """One left-padded `model.generate` over several conversations; only the new tokens are decoded."""
    import torch

    processor, model = loaded.processor, loaded.model
    tokenizer = getattr(processor, "tokenizer", processor)
    if loaded.text_only:
        # A tokenizer's template: plain string contents (hf_text.text_conversation), left padding set at load.
        inputs = tokenizer.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            padding=True,
        ).to(model.device)
    else:
        inputs = processor.apply_chat_template(
            _audio_at_model_rate(conversations, processor),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True, "padding_side": "left"},
        )
        # Floating inputs (pixel values) follow the model dtype; ids and masks only move device.
        inputs = inputs.to(device=model.device, dtype=model.dtype)
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.temperature > 0,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if settings.temperature > 0:
        kwargs["temperature"] = settings.temperature
    with loaded.lock, torch.inference_mode():
        output = model.generate(**inputs, **kwargs)
    prompt_length = 0 if model.config.is_encoder_decoder else inputs["input_ids"].shape[1]
    eos = _eos_ids(model, tokenizer)
    results = []
    for row, mask in zip(output, inputs["attention_mask"], strict=True):
        new = row[prompt_length:].tolist()
        stop_at = next((i for i, token in enumerate(new) if token in eos), None)
        if stop_at is not None:
            new = new[: stop_at + 1]  # the EOS counts as generated; the padding after it does not
        results.append(
            Generated(
                text=tokenizer.decode(new, skip_special_tokens=True).strip(),
                input_tokens=int(mask.sum()),
                output_tokens=len(new),
                finish_reason="stop" if stop_at is not None else "length",
            )
        )
    return results


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list) else {int(eos)}


def _audio_at_model_rate(
    conversations: list[list[dict[str, Any]]], processor: Any
) -> list[list[dict[str, Any]]]:
    """Copies of the conversations with every audio part resampled to the feature extractor's rate
    (the processor takes raw arrays as already at that rate)."""
    parts = [p for c in conversations for m in c if isinstance(m["content"], list) for p in m["content"]]
    if not any(p.get("type") == "audio" for p in parts):
        return conversations
    extractor = getattr(processor, "feature_extractor", None)
    if extractor is None:
        raise ValueError("hf: this model takes no audio (its processor has no feature extractor)")
    from safebench.generation.speech import resample

    rate = int(extractor.sampling_rate)

    def convert(part: dict[str, Any]) -> dict[str, Any]:
        if part.get("type") != "audio" or "sampling_rate" not in part:
            return part
        return {"type": "audio", "audio": resample(part["audio"], int(part["sampling_rate"]), rate)}

    return [
        [
            {**m, "content": [convert(p) for p in m["content"]]}
            if isinstance(m["content"], list)
            else dict(m)
            for m in conversation
        ]
        for conversation in conversations
    ]
