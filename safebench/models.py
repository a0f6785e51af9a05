"""Typed model settings: one `ModelConfig` per target, juror or foreperson, validated at the edge."""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator


class ModelConfig(BaseModel):
    """How to reach one model. `spec` is `provider:name` (e.g. `openai:gpt-4o`, `hf:./tiny-llava`)."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(min_length=1)
    # What a target is called in records and metrics: its name in a models file, else the spec.
    label: str | None = Field(default=None, min_length=1)
    # OpenAI-compatible servers; default to OPENAI_BASE_URL / OPENAI_API_KEY.
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int = Field(default=512, ge=1)
    timeout: float = Field(default=120.0, gt=0)
    requests_per_second: float | None = Field(default=None, gt=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    # Targets only: a Jinja template of the text the target is sent, a bundled name (`poc_wrapper`,
    # prompts/targets/) or a file path; variables query, image_text, scenario, category (names).
    # See safebench.target_templates and docs/conditions.md.
    prompt_template: str | None = Field(default=None, min_length=1)
    # Whether images/audio are sent to this model when it judges (jurors) - targets always get them.
    multimodal: bool = True
    # Structured output method for judges; "auto" tries json_schema, json_object, function_calling,
    # then text, and remembers per model object the first one the server supports.
    output: Literal["auto", "json_schema", "json_object", "function_calling", "text"] = "auto"
    # Local transformers models.
    device: str = "cpu"
    dtype: str = "auto"
    batch_size: int = Field(default=8, ge=1)
    trust_remote_code: bool = False

    @field_validator("spec")
    @classmethod
    def _provider_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+:.+", value):
            # The commonest slip is a bare model name: say which spec was probably meant.
            hint = f"; did you mean openai:{value}?" if value and ":" not in value else ""
            raise ValueError(f"model spec {value!r} needs a provider prefix (provider:name){hint}")
        return value

    @property
    def id(self) -> str:
        """The unique label of a target: `label` if set, else the spec."""
        return self.label or self.spec

    @property
    def provider(self) -> str:
        return self.spec.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.spec.split(":", 1)[1]

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(self.api_key_env or "OPENAI_API_KEY")

    @field_serializer("api_key")
    def _hide_key(self, value: SecretStr | None) -> str | None:
        # Saved configs must never carry secrets; the env var name (api_key_env) is enough to rerun.
        return None if value is None else "***"
