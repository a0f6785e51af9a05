"""Run configuration: typed, validated at the edge, saved to `RUN_DIR/config.yaml` without secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from safebench.models import ModelConfig
from safebench.retry import RetryPolicy

Deliberation = Literal["on_disagreement", "always", "never"]
# What the target receives: the query text; text + image; the spoken query (plus a neutral instruction,
# see safebench.targets.AUDIO_INSTRUCTION); or the query text + its recording.
Modality = Literal["text", "image", "audio", "audio+text"]
# Which image the target (and the jury) is shown in the `image` modality; see docs/conditions.md and
# safebench.image_conditions. `dataset` is the item's own image.
ImageCondition = Literal["dataset", "none", "black", "white", "noise", "random", "first-attempt"]


def _as_model(value: Any) -> Any:
    return {"spec": value} if isinstance(value, str) else value


class JurorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card: str
    model: ModelConfig | None = None  # None: the card's default model

    _coerce = field_validator("model", mode="before")(classmethod(lambda cls, v: _as_model(v)))


class JuryConfig(BaseModel):
    """Who sits on the jury and how it deliberates. Loadable from a YAML file (a mixed jury)."""

    model_config = ConfigDict(extra="forbid")

    jurors: list[JurorConfig] | None = None  # None: every card in agents/jury/jurors
    model: ModelConfig | None = None  # puts every juror on one model (`--jury SPEC`)
    foreperson: ModelConfig | None = None
    summarize: bool = False  # the foreperson writes the verdict's reasoning with a model call
    max_rounds: int = Field(default=2, ge=0, le=10)
    deliberate: Deliberation = "on_disagreement"
    quorum: int = Field(default=3, ge=1)
    reasks: int = Field(default=1, ge=0, le=5)
    seed: int = 0
    agents_dir: Path | None = None
    prompts_dir: Path | None = None

    _coerce = field_validator("model", "foreperson", mode="before")(classmethod(lambda cls, v: _as_model(v)))


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=4, ge=1, le=20)
    initial_delay: float = Field(default=1.0, ge=0)
    max_delay: float = Field(default=30.0, ge=0)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.initial_delay, self.max_delay)


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = "sample"
    targets: list[ModelConfig] = Field(
        default_factory=lambda: [ModelConfig(spec="scripted:mixed")], min_length=1
    )
    jury: JuryConfig = Field(default_factory=JuryConfig)
    out: Path
    concurrency: int = Field(default=8, ge=1, le=1024)
    # Local processes sharing the run's items (and its concurrency): past one core's worth of
    # orchestration. Not part of what the run is, so it may differ on --resume.
    processes: int = Field(default=1, ge=1, le=64)
    limit: int | None = Field(default=None, ge=1)
    modality: Modality = "image"
    voice: str = Field(default="female", min_length=1)  # which AudioRef the audio modalities play
    image_condition: ImageCondition = "dataset"
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # A calibration.json (safebench calibrate): metrics add the jury-corrected ASR. Not part of what the
    # run is: it changes no verdict, so it may differ on --resume.
    calibration: Path | None = None

    @field_validator("targets", mode="before")
    @classmethod
    def _coerce_targets(cls, value: Any) -> Any:
        return [_as_model(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _unique_targets(self) -> RunConfig:
        # Records, checkpoints and metrics are keyed by the label: two targets under one label would
        # overwrite each other. Two names with one spec are two targets.
        seen: set[str] = set()
        for target in self.targets:
            if target.id in seen:
                raise ValueError(
                    f"target {target.id!r} is given twice; give each target its own name in a models file"
                )
            seen.add(target.id)
        return self

    @model_validator(mode="after")
    def _condition_needs_images(self) -> RunConfig:
        # Another modality sends no image, so a condition would silently change nothing.
        if self.image_condition != "dataset" and self.modality != "image":
            raise ValueError(
                f"image_condition {self.image_condition!r} needs modality 'image' (given: {self.modality!r})"
            )
        return self

    def public_dict(self) -> dict[str, Any]:
        """The config as saved: secrets replaced (ModelConfig serialises api_key as "***")."""
        return self.model_dump(mode="json")


class ConfigError(ValueError):
    pass


def load_yaml_model(path: Path, model: type[BaseModel]) -> Any:
    """Load a YAML file into a pydantic model, with errors that name the file and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from exc
