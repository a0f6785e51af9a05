"""A loopback OpenAI-compatible Chat Completions server for tests and benchmarks (stdlib only).

    with OpenAIStub(responder=lambda request: "hello", latency=0.1) as stub:
        ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="EMPTY", use_responses_api=False)

A responder sees the whole request body and returns a str (the message content) or a dict with
`content` and/or `tool_calls` ([{"name": ..., "arguments": {...}}]) and optionally `finish_reason`
("length", "content_filter", ...; default "tool_calls" when there are tool calls, else "stop").
It may raise `StubHTTPError(status, message, headers=...)` to play a server that rejects the request;
`fail_next(status, times, headers=..., message=...)` injects failures ahead of the responder.
Each connection gets its own thread, so concurrent calls overlap their `latency` instead of queueing
behind each other.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]


def count_tokens(text: str) -> int:
    """The stub's token count: whitespace-separated words (deterministic, easy to predict in tests)."""
    return len(text.split())


def message_text(message: dict[str, Any]) -> str:
    """The text of one request message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(request: dict[str, Any]) -> str:
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    return message_text(users[-1]) if users else ""


def default_responder(request: dict[str, Any]) -> str:
    return f"stub reply to: {' '.join(last_user_text(request).split()[:12])}"


def requested_tool(request: dict[str, Any]) -> str:
    """The tool a request forces via tool_choice, else its first tool."""
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and "function" in choice:
        return str(choice["function"]["name"])
    return str(request["tools"][0]["function"]["name"])


def structured_responder(payload: dict[str, Any], text: str | None = None) -> Responder:
    """Answer tool requests with a call carrying `payload`, everything else with `payload` as JSON text
    (or `text` for plain requests without a response_format, when given)."""

    def respond(request: dict[str, Any]) -> str | dict[str, Any]:
        if request.get("tools"):
            return {"tool_calls": [{"name": requested_tool(request), "arguments": payload}]}
        if text is not None and not request.get("response_format"):
            return text
        return json.dumps(payload)

    return respond


# What llama-cpp-python 0.3.x answers (HTTP 500) to `response_format: {"type": "json_schema"}`.
LLAMA_CPP_JSON_SCHEMA_ERROR = (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
    "  Input should be 'text' or 'json_object' [type=literal_error, input_value='json_schema', "
    "input_type=str]\n    For further information visit https://errors.pydantic.dev/2.11/v/literal_error"
)


class StubHTTPError(Exception):
    """Raise from a responder to answer with an HTTP error (e.g. 400 for an unsupported feature).

    `message` becomes the OpenAI-style error body's `error.message`; `headers` are sent as given
    (e.g. {"Retry-After": "1"})."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class OpenAIStub:
    """Serves GET /v1/models and POST /v1/chat/completions (plain and SSE streaming) on 127.0.0.1."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        require_key: bool | str = False,
        models: Sequence[str] = ("stub-model",),
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.latency = latency
        # True: any non-empty bearer token; a str: exactly that token.
        self.require_key = require_key
        self.models = list(models)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._failures: deque[StubHTTPError] = deque()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("OpenAIStub is not running; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every chat completion body received (failed ones included), in arrival order."""
        with self._lock:
            return list(self._requests)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` chat completion requests with HTTP `status`.

        `headers` are sent with each failure (without them, a 429 carries Retry-After: 0);
        `message` replaces the default error message ("stub injected HTTP <status>")."""
        if headers is None:
            headers = {"Retry-After": "0"} if status == 429 else {}
        failure = StubHTTPError(status, message or f"stub injected HTTP {status}", headers)
        with self._lock:
            self._failures.extend([failure] * times)

    def start(self) -> OpenAIStub:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        # A short poll interval keeps close() (which waits for the loop to notice) from costing 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        # Keep-alive connections would otherwise park their handler threads until the client goes away.
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Called from handler threads.
    def _record(self, body: dict[str, Any]) -> StubHTTPError | None:
        """Store a request; return the injected failure it must get, if any."""
        with self._lock:
            self._requests.append(body)
            return self._failures.popleft() if self._failures else None

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _authorized(self, header: str | None) -> bool:
        if not self.require_key:
            return True
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.require_key is True or token.strip() == self.require_key


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when 32+ clients connect at once.
    request_queue_size = 128
    daemon_threads = True
    stub: OpenAIStub

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-reply (or close() during a call) is not an error worth printing.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: nothing the stub sees (headers, keys, prompts) goes to a log."""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.stub._track(self.connection, True)

    def finish(self) -> None:
        self.server.stub._track(self.connection, False)
        super().finish()

    def do_GET(self) -> None:
        stub = self.server.stub
        if not stub._authorized(self.headers.get("Authorization")):
            self._send_json(401, _error("invalid api key", "invalid_request_error", "invalid_api_key"))
        elif _route(self.path) == "/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in stub.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, _error(f"no route {self.path}", "invalid_request_error"))

    def do_POST(self) -> None:
        stub = self.server.stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not stub._authorized(self.headers.get("Authorization")):
            self._send_json(401, _error("invalid api key", "invalid_request_error", "invalid_api_key"))
            return
        if _route(self.path) != "/chat/completions":
            self._send_json(404, _error(f"no route {self.path}", "invalid_request_error"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, _error("body is not JSON", "invalid_request_error"))
            return
        failure = stub._record(body)
        if stub.latency:
            time.sleep(stub.latency)
        if failure is not None:
            self._send_json(failure.status, _error(failure.message, "stub_error"), failure.headers)
            return
        try:
            reply = stub.responder(body)
            completion = _completion(body, reply)
        except StubHTTPError as exc:  # the responder plays a server that rejects this request
            kind = "server_error" if exc.status >= 500 else "invalid_request_error"
            self._send_json(exc.status, _error(exc.message, kind), exc.headers)
            return
        except Exception as exc:  # a broken responder must show up in the client, not hang it
            self._send_json(
                500, _error(f"stub responder failed: {type(exc).__name__}: {exc}", "server_error")
            )
            return
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send(200, _sse(completion, include_usage), "text/event-stream")
        else:
            self._send_json(200, completion)

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _route(path: str) -> str:
    path = path.split("?", 1)[0].rstrip("/")
    return path.removeprefix("/v1")


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


_ids = iter(range(1, 1 << 62))
_ids_lock = threading.Lock()


def _next_id() -> int:
    with _ids_lock:
        return next(_ids)


def _completion(request: dict[str, Any], reply: str | dict[str, Any]) -> dict[str, Any]:
    """A non-streaming chat.completion object for `reply`, with word-count usage."""
    spec = {"content": reply} if isinstance(reply, str) else reply
    content = spec.get("content")
    n = _next_id()
    tool_calls = [
        {
            "id": f"call_stub_{n}_{i}",
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": call["arguments"]
                if isinstance(call.get("arguments"), str)
                else json.dumps(call.get("arguments") or {}),
            },
        }
        for i, call in enumerate(spec.get("tool_calls") or [])
    ]
    if content is not None and not isinstance(content, str):
        content = json.dumps(content)  # a responder may hand back a JSON object for structured output
    # A pure tool call has null content, as OpenAI sends it.
    message: dict[str, Any] = {"role": "assistant", "content": content or (None if tool_calls else "")}
    if tool_calls:
        message["tool_calls"] = tool_calls
    prompt = sum(count_tokens(message_text(m)) for m in request.get("messages", []))
    completion = count_tokens(message["content"] or "") + sum(
        count_tokens(c["function"]["arguments"]) for c in tool_calls
    )
    finish = spec.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
    return {
        "id": f"chatcmpl-stub-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _sse(completion: dict[str, Any], include_usage: bool) -> bytes:
    """The same completion as `chat.completion.chunk` server-sent events, one chunk per word."""
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        head = {k: completion[k] for k in ("id", "created", "model")}
        return {**head, "object": "chat.completion.chunk", "choices": choices, **extra}

    def delta(d: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": d, "finish_reason": finish}]

    events = [chunk(delta({"role": "assistant", "content": ""}))]
    # Split before each word that follows whitespace, so the pieces concatenate back exactly.
    for piece in re.split(r"(?<=\s)(?=\S)", message["content"] or ""):
        if piece:
            events.append(chunk(delta({"content": piece})))
    for i, call in enumerate(message.get("tool_calls", [])):
        events.append(chunk(delta({"tool_calls": [{"index": i, **call}]})))
    events.append(chunk(delta({}, choice["finish_reason"])))
    if include_usage:
        events.append(chunk([], usage=completion["usage"]))
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()
