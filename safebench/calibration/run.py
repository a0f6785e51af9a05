"""`safebench calibrate`: run the jury on labelled pairs (or only read stored judges), then score every
judge against the humans. Writes `OUT/calibration.json` and `OUT/results.jsonl` (one line per pair)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safebench.calibration.judges import JudgeLabels, jury_judges, stored_judges
from safebench.calibration.labels import LabelSet
from safebench.calibration.pairs import JURY_DIR, write_pairs
from safebench.calibration.score import calibration_report, per_pair_records
from safebench.config import JuryConfig, RetrySettings, RunConfig
from safebench.models import ModelConfig
from safebench.runner import RESULTS_FILE, Evaluation, EventHandler
from safebench.schema import Result

CALIBRATION_FILE = "calibration.json"
PAIRS_RESULTS_FILE = "results.jsonl"
RESPONSES_LABEL = "labelled responses"


@dataclass
class Calibration:
    """One calibration: the labelled set, the jury to run on it (None: stored judges only)."""

    labels: LabelSet
    out: Path
    jury: JuryConfig | None
    concurrency: int = 8
    retry: RetrySettings | None = None
    resume: bool = False
    on_event: EventHandler | None = None
    argv: list[str] | None = None

    def evaluation(self) -> Evaluation | None:
        """The jury's run over the pairs (a `replay:` target answering with the labelled responses)."""
        if self.jury is None:
            return None
        dataset, answers, has_images = write_pairs(self.labels, self.out)
        config = RunConfig(
            dataset=str(dataset),
            targets=[ModelConfig(spec=f"replay:{answers}", label=RESPONSES_LABEL)],
            jury=self.jury,
            out=self.out / JURY_DIR,
            concurrency=self.concurrency,
            modality="image" if has_images else "text",
            retry=self.retry or RetrySettings(),
        )
        return Evaluation(config, resume=self.resume, on_event=self.on_event, argv=self.argv)

    async def run(self, evaluation: Evaluation | None = None) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        judges: list[JudgeLabels] = []
        setup = None
        if evaluation is not None:
            outcome = await evaluation.run()
            lines = (outcome.run_dir / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
            results = [Result.model_validate_json(line) for line in lines if line.strip()]
            judges = jury_judges(results, evaluation.config.jury.quorum)
            setup = evaluation.resolved.public["jury"]
        judges += stored_judges(self.labels)
        report = calibration_report(self.labels, judges, setup)
        (self.out / CALIBRATION_FILE).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        rows = per_pair_records(self.labels, judges)
        (self.out / PAIRS_RESULTS_FILE).write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        return report
