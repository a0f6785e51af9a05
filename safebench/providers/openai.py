"""`openai:` provider: any OpenAI-compatible Chat Completions server (OpenAI, vLLM, Ollama, LM Studio)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from safebench.models import ModelConfig
from safebench.providers.registry import ModelSpecError, Provider

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PREFLIGHT_TIMEOUT = 5.0
# Local servers (vLLM, Ollama, LM Studio) ignore the key, but the OpenAI client insists on one.
PLACEHOLDER_KEY = "EMPTY"


def resolve_base_url(config: ModelConfig) -> str:
    return (config.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def is_official_api(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").lower() == "api.openai.com"


def _settings(config: ModelConfig) -> tuple[str, str]:
    """(base_url, api_key), or a one-line ModelSpecError a user can act on."""
    if not config.name.strip():
        raise ModelSpecError(f"model spec {config.spec!r} has an empty model name (expected openai:NAME)")
    base_url = resolve_base_url(config)
    key = config.resolved_api_key()
    if key:
        return base_url, key
    if is_official_api(base_url):
        env = config.api_key_env or "OPENAI_API_KEY"
        raise ModelSpecError(
            f"{config.spec}: no API key for {base_url}; set the {env} environment variable "
            "(or point base_url at a local OpenAI-compatible server)"
        )
    return base_url, PLACEHOLDER_KEY


def create_openai_chat_model(config: ModelConfig) -> BaseChatModel:
    # Imported here so that listing providers or running other providers does not pay for the openai SDK.
    from langchain_openai import ChatOpenAI
    from openai import DefaultAsyncHttpxClient

    base_url, key = _settings(config)
    return ChatOpenAI(
        # A client of this model object's own: langchain-openai's default is cached for the whole
        # process, and its keep-alive connections die with the event loop of the run that opened them
        # ("Event loop is closed" in a second evaluate() or --resume in the same process).
        http_async_client=DefaultAsyncHttpxClient(timeout=config.timeout),
        model=config.name,
        base_url=base_url,
        api_key=key,
        # Compatible servers only speak Chat Completions; never let the client switch to Responses.
        use_responses_api=False,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout,
        # safebench.retry.with_retries retries transient errors itself and counts every attempt.
        max_retries=0,
        extra_body=_extra_body(config, base_url) or None,
        # Token usage also when a graph streams the call (off by default for non-OpenAI base URLs).
        stream_usage=True,
    )


def _extra_body(config: ModelConfig, base_url: str) -> dict[str, Any]:
    """Vendor parameters. langchain-openai sends the token limit as `max_completion_tokens` only, which
    some compatible servers ignore (llama-cpp-python's generated 400 tokens with a limit of 8), so other
    servers also get the classic `max_tokens`; the user's own `extra_body` wins."""
    if is_official_api(base_url):
        return dict(config.extra_body)
    return {"max_tokens": config.max_tokens, **config.extra_body}


def bind_response_format(model: BaseChatModel, response_format: dict[str, Any]) -> Runnable | None:
    """`model` sending `response_format` with every request, for langchain-openai models (None for
    others). langchain-openai sends any request with a `response_format` argument through the SDK's
    `parse`, which re-walks the whole typed request and parses the reply a second time (about 2 ms of
    CPU per call here); put in `extra_body`, the same JSON goes out through `create`, and the reply's
    text is the caller's to validate (safebench.structured does). The model's own extra_body stays."""
    module = sys.modules.get("langchain_openai")  # not imported: the model cannot be one of its classes
    if module is None or not isinstance(model, module.chat_models.base.BaseChatOpenAI):
        return None
    return model.bind(extra_body={**(model.extra_body or {}), "response_format": response_format})


def openai_preflight(config: ModelConfig) -> None:
    """Fail fast on an empty model name, a missing key or an endpoint that does not answer at all."""
    base_url, key = _settings(config)
    try:
        # Any HTTP response (even 401/404) proves the server is there; only transport failures count.
        httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=PREFLIGHT_TIMEOUT)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ModelSpecError(
            _redact(f"{config.spec}: base_url {base_url!r} is not a valid http(s) URL: {_reason(exc)}", key)
        ) from exc
    except httpx.ReadTimeout:
        # Connected, but slow to answer: a local server busy with a generation is still there.
        return
    except httpx.HTTPError as exc:
        raise ModelSpecError(_redact(f"{config.spec}: cannot reach {base_url}: {_reason(exc)}", key)) from exc


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _redact(message: str, key: str) -> str:
    # Belt and braces: transport errors do not echo headers, but a key must never reach a log line.
    return message.replace(key, "***") if key != PLACEHOLDER_KEY else message


PROVIDER = Provider(
    name="openai",
    chat=create_openai_chat_model,
    preflight=openai_preflight,
    description="Any OpenAI-compatible Chat Completions server (OpenAI, vLLM, Ollama, LM Studio); "
    "base_url / OPENAI_BASE_URL, api_key_env / OPENAI_API_KEY",
)
