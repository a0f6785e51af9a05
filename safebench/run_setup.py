"""Before a run starts: which models it really uses, whether any is a stand-in, and its saved settings.

`check_models` preflights every distinct model once and resolves the jury slot by slot; `saved_config`
and `resume_config` rebuild a run's configuration from `RUN_DIR/config.yaml`, naming any option that
differs, so `--resume` needs no option retyped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import ValidationError

from safebench.config import ConfigError, RunConfig
from safebench.models import ModelConfig
from safebench.providers.openai import resolve_base_url
from safebench.providers.pool import model_key
from safebench.providers.registry import ModelSpecError, check_inputs, preflight
from safebench.target_templates import load_template
from safebench.target_templates import preflight as preflight_template

CONFIG_FILE = "config.yaml"
# Settings that make a run what it is; the others (out, concurrency, retry) may change on --resume.
IDENTITY_FIELDS = ("dataset", "targets", "jury", "limit", "modality", "voice", "image_condition")
HIDDEN_KEY = "***"  # how ModelConfig saves a literal api_key


def identity(config: RunConfig) -> dict[str, Any]:
    """What the run is. Settings at their defaults that older runs did not have (image_condition,
    prompt_template) are left out, so a run made before they existed still resumes; a target template
    counts by its text's sha256, so editing the file makes another run."""
    public = config.public_dict()
    ident = {k: public[k] for k in IDENTITY_FIELDS}
    if ident["image_condition"] == "dataset":
        del ident["image_condition"]
    ident["targets"] = [
        {k: v for k, v in t.items() if not (k == "prompt_template" and v is None)} for t in ident["targets"]
    ]
    templates = {t.id: load_template(t.prompt_template).sha256 for t in config.targets if t.prompt_template}
    if templates:
        ident["target_templates"] = templates
    return ident


def check_templates(config: RunConfig) -> None:
    """Render every target's template once with placeholders: a missing file, a syntax error or an
    undefined variable is one line (ConfigError) before any model call."""
    for target in config.targets:
        if target.prompt_template is None:
            continue
        if config.modality == "audio":
            raise ConfigError(
                f"target {target.id}: a prompt template has no effect with modality 'audio' (the query "
                "is only heard); drop it or use audio+text"
            )
        preflight_template(target.prompt_template)


def check_stand_ins(config: RunConfig) -> None:
    """No stand-in judges a real model unless asked: the default jury is the cards' scripted stand-ins."""
    real = [t.id for t in config.targets if t.provider != "scripted"]
    if real and config.jury.jurors is None and config.jury.model is None:
        raise ConfigError(
            f"target {real[0]} is a real model but no jury was given, and the default jury is scripted "
            "stand-ins: pass --jury SPEC (or --jury scripted:juror to use stand-ins on purpose)"
        )


def endpoint(config: ModelConfig) -> str | None:
    """The base URL a model is reached at, as saved: credentials and query string removed."""
    url = resolve_base_url(config) if config.provider == "openai" else config.base_url
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class Resolved:
    """Who the run's models are, slot by slot (saved under `resolved:` in config.yaml)."""

    public: dict[str, Any]
    models: list[ModelConfig] = field(default_factory=list)

    @property
    def stand_ins(self) -> list[str]:
        return list(self.public["stand_ins"])

    def stand_ins_for(self, label: str) -> list[str]:
        """The stand-ins behind one target's numbers: itself if scripted, and the jury's."""
        own = [s for s in self.stand_ins if s.startswith(f"target {label}:")]
        return own + [s for s in self.stand_ins if not s.startswith("target ")]


def check_models(config: RunConfig) -> Resolved:
    """Seat the jury (a quorum larger than the jury: ConfigError), preflight every distinct model once
    (unknown spec, missing key, unreachable endpoint: one line, ModelSpecError) and describe them all."""
    from graphs.context import jury_seats

    check_templates(config)  # no model call: before the preflights, which may reach servers
    jurors, (fore_card, fore_model) = jury_seats(config.jury)
    models = [*config.targets, *(m for _, m in jurors), fore_model]
    media = _media_sent(config, [m for _, m in jurors])
    seen: set[str] = set()
    problems: list[str] = []
    for model in models:
        if model_key(model) not in seen:
            seen.add(model_key(model))
            try:
                preflight(model)
                # A text-only model sent an image would fail every item: say so now, not per record.
                check_inputs(model, frozenset(media.get(model_key(model), ())))
            except ModelSpecError as exc:  # all of a mixed jury's problems at once, one line each
                problems.append(str(exc))
    if problems:
        raise ModelSpecError("\n".join(dict.fromkeys(problems)))
    stand_ins = [f"target {t.id}: {t.spec}" for t in config.targets if t.provider == "scripted"]
    stand_ins += [
        f"juror {slot} ({card.id}): {m.spec}"
        for slot, (card, m) in enumerate(jurors)
        if m.provider == "scripted"
    ]
    if config.jury.summarize and fore_model.provider == "scripted":
        stand_ins.append(f"foreperson ({fore_card.id}): {fore_model.spec}")
    public = {
        "targets": [{"label": t.id, "spec": t.spec, "base_url": endpoint(t)} for t in config.targets],
        "jury": [
            {
                "slot": slot,
                "card": card.id,
                "persona": card.name,
                "spec": m.spec,
                "base_url": endpoint(m),
                "multimodal": m.multimodal,
            }
            for slot, (card, m) in enumerate(jurors)
        ],
        "foreperson": {
            "card": fore_card.id,
            "spec": fore_model.spec,
            "base_url": endpoint(fore_model),
            "summarizes": config.jury.summarize,
        },
        "stand_ins": stand_ins,
    }
    return Resolved(public=public, models=models)


def _media_sent(config: RunConfig, jurors: list[ModelConfig]) -> dict[str, set[str]]:
    """What each model (by pool key) is sent besides text: targets get the modality's medium, jurors
    the image in the image modality unless `multimodal: false` (graphs.jury shows it only then)."""
    # `--image-condition none` sends the image modality's targets and jurors no image at all.
    shows_image = config.modality == "image" and config.image_condition != "none"
    target_media = {"image": {"image"} if shows_image else set(), "audio": {"audio"}, "audio+text": {"audio"}}
    media: dict[str, set[str]] = {}
    for target in config.targets:
        media.setdefault(model_key(target), set()).update(target_media.get(config.modality, set()))
    for juror in jurors:
        if shows_image and juror.multimodal:
            media.setdefault(model_key(juror), set()).add("image")
    return media


def _read_saved(out: Path) -> dict[str, Any]:
    path = out / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{out}: no {CONFIG_FILE} to resume from (is this a run directory?)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the saved run configuration: {exc}") from exc
    data.pop("resolved", None)
    return data


def _validated(data: dict[str, Any], source: Path | str) -> RunConfig:
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    for model in config.targets + [m for m in _jury_models(config) if m is not None]:
        if model.api_key is not None and model.api_key.get_secret_value() == HIDDEN_KEY:
            raise ConfigError(
                f"{source}: {model.id} had a literal api_key, which is never saved; name an environment "
                "variable with api_key_env instead (or pass --models again)"
            )
    return config


def _jury_models(config: RunConfig) -> list[ModelConfig | None]:
    jury = config.jury
    return [jury.model, jury.foreperson, *(j.model for j in jury.jurors or [])]


def config_from_saved(data: dict[str, Any], source: str, out: Path) -> RunConfig:
    """A run's configuration from its saved form (config.yaml's, or a shared run store's), run in `out`."""
    data = {k: v for k, v in data.items() if k != "resolved"}
    return _validated({**data, "out": str(out)}, source)


def saved_config(out: Path) -> RunConfig:
    """The configuration of the run saved in `out`."""
    data = _read_saved(out)
    data["out"] = str(out)
    return _validated(data, out / CONFIG_FILE)


def resume_config(out: Path, given: dict[str, Any]) -> RunConfig:
    """The saved run's configuration with the options given now laid over it. An option that would
    change what the run is (`IDENTITY_FIELDS`) and differs from the saved value is an error naming it."""
    saved = _read_saved(out)
    for name, value in given.items():
        if name in IDENTITY_FIELDS and name in saved:
            now = RunConfig.model_validate({**saved, name: value, "out": str(out)}).public_dict()[name]
            if now != saved[name]:
                raise ConfigError(
                    f"--resume: {name} differs from the run saved in {out} (saved: {_short(saved[name])}; "
                    f"given: {_short(now)}); drop the option to resume, or choose another --out"
                )
    return _validated({**saved, **given, "out": str(out)}, out / CONFIG_FILE)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."
