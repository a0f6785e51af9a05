"""Retry transient model failures with exponential backoff and count every attempt."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")

_TRANSIENT_NAMES = {
    "RateLimitError",
    "APITimeoutError",
    "APIConnectionError",
    "InternalServerError",
    "ServiceUnavailableError",
}


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors are worth retrying; 4xx and bugs are not."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status == 408 or status >= 500
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError | httpx.TransportError):
        return True
    return type(exc).__name__ in _TRANSIENT_NAMES


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.25


class CallFailed(Exception):
    """A model call that failed for good; `attempts` says how many calls it cost."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


async def with_retries(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, on_attempt: Callable[[], None] | None = None
) -> tuple[T, int]:
    """Run `call` until it succeeds or fails non-transiently; return (result, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        if on_attempt:
            on_attempt()
        try:
            return await call(), attempt
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc) or attempt >= policy.max_attempts:
                raise CallFailed(f"{type(exc).__name__}: {exc}", attempt) from exc
            delay = min(policy.max_delay, policy.initial_delay * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (1 + random.uniform(-policy.jitter, policy.jitter)))
