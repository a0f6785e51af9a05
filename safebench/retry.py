"""Retry transient model failures with exponential backoff and count every attempt.

Three kinds of failure: transient (429, 408, 5xx, timeouts, dropped connections: retried), capability
errors (the server cannot do what the request asks, e.g. a `response_format` it does not know: never
retried, the caller may try another output method), and everything else (auth, bugs: never retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
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

# A 5xx is a capability error only when its body says the request itself is the problem: llama-cpp-python
# answers an unknown `response_format` type with HTTP 500 and a pydantic "literal_error" body.
_CAPABILITY_BODY = re.compile(
    r"response_format|json_schema|json_object|tool_choice|\btools?\b|function.?call|unsupported|"
    r"not supported|not implemented|invalid (?:request )?param|unknown param|unrecognized (?:request )?arg|"
    r"literal_error|extra_forbidden|extra inputs are not permitted",
    re.I,
)
# A 400 for a prompt that is too long fails on every output method alike: not a capability to demote.
_CONTEXT_OVERFLOW = re.compile(
    r"context_length_exceeded|context window|maximum context length|prompt is too long|too many tokens", re.I
)
_CAPABILITY_STATUSES = {400, 404, 422, 501}

# A server may ask for a long pause (Retry-After: 3600); waiting that long would stall a whole run on one
# call, so we wait at most this long and let the attempt budget decide what happens next.
RETRY_AFTER_CAP = 60.0


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK or httpx error carries, if any."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def error_text(exc: BaseException) -> str:
    """What the server said: the exception's message plus its parsed or raw error body."""
    parts = [str(exc)]
    body = getattr(exc, "body", None)
    if body is not None:
        parts.append(body if isinstance(body, str) else json.dumps(body, default=str))
    elif isinstance(exc, httpx.HTTPStatusError):
        # A streamed response nobody read has no text: the status must do.
        with contextlib.suppress(httpx.ResponseNotRead):
            parts.append(exc.response.text)
    return "\n".join(parts)


def is_capability_error(exc: BaseException) -> bool:
    """The server cannot do what this request asks (an output method it lacks): 400/404/422/501, or a
    5xx whose body names the offending parameter. Retrying the same request cannot help."""
    status = status_of(exc)
    if status is None:
        return False
    if status in _CAPABILITY_STATUSES:
        return not _CONTEXT_OVERFLOW.search(error_text(exc))
    return status >= 500 and bool(_CAPABILITY_BODY.search(error_text(exc)))


def is_transient(exc: BaseException) -> bool:
    """429, 408, 5xx (except capability errors), timeouts and connection errors are worth retrying."""
    status = status_of(exc)
    if status is not None:
        return status in (429, 408) or (status >= 500 and not is_capability_error(exc))
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError | httpx.TransportError):
        return True
    return type(exc).__name__ in _TRANSIENT_NAMES


def retry_after(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, or `Retry-After` as seconds or an HTTP
    date), capped at RETRY_AFTER_CAP; None when it did not say."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not isinstance(headers, Mapping):
        return None
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    seconds: float | None = None
    if "retry-after-ms" in lowered:
        try:
            seconds = float(lowered["retry-after-ms"]) / 1000
        except ValueError:
            seconds = None
    if seconds is None and "retry-after" in lowered:
        value = lowered["retry-after"]
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
            except (TypeError, ValueError):
                return None
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.25


class CallFailed(Exception):
    """A model call that failed for good; `attempts` says how many calls it cost. `capability` marks a
    request the server cannot serve (try another output method); `transient` one whose retries ran out."""

    def __init__(
        self,
        message: str,
        attempts: int,
        *,
        transient: bool = False,
        capability: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.transient = transient
        self.capability = capability
        self.status = status


def backoff(policy: RetryPolicy, attempt: int, exc: BaseException | None = None) -> float:
    """The pause after failed attempt number `attempt`: jittered exponential backoff, but never shorter
    than what the server asked for in Retry-After."""
    delay = min(policy.max_delay, policy.initial_delay * 2 ** (attempt - 1))
    delay *= 1 + random.uniform(-policy.jitter, policy.jitter)
    asked = retry_after(exc) if exc is not None else None
    return max(delay, asked) if asked is not None else delay


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
            transient = is_transient(exc)
            if not transient or attempt >= policy.max_attempts:
                raise _failed(exc, attempt, transient) from exc
            await asyncio.sleep(backoff(policy, attempt, exc))


def _failed(exc: Exception, attempts: int, transient: bool) -> CallFailed:
    return CallFailed(
        f"{type(exc).__name__}: {exc}",
        attempts,
        transient=transient,
        capability=is_capability_error(exc),
        status=status_of(exc),
    )
