"""`safebench evaluate` end to end against a real OpenAI-compatible server: llama-cpp-python serving
SmolLM2-135M-Instruct (text-only, and a poor judge), as both the target and every juror.

The stub server in safebench.testing plays the server quirks we know of; this test meets the real ones
(probed on 0.3.36: list-of-parts content and `response_format: json_schema` are HTTP 500, an image part
is the same 500 "can only concatenate str (not "list") to str", json_object + schema works).
It runs the installed CLI in a subprocess, as a user would, so the exit status is tested too.
A first, fast test checks that a model's `max_tokens` reaches this server at all: it ignores
`max_completion_tokens`, which is what langchain-openai sends, and an unlimited answer runs on to end
of text or the context limit (one list prompt: 4059 tokens, over two minutes), which would blow the
time budget of the runs below.

Exit status expected (documented CLI contract): 0 when every record was judged, 3 when some records are
`error`. The text run may end either way (a 135M judge can make the jury fail on an item); the image run
must be 3 because this server cannot take an image at all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    # Only for annotations: importing it here would load the plugin before pytest can rewrite its asserts.
    from tests.llama_server import LlamaServer

pytest_plugins = ["tests.llama_server"]

pytestmark = pytest.mark.slow

TARGET = "smollm2-target"
JUROR = "smollm2-juror"
LIMIT = 3
MAX_ATTEMPTS = 4  # the CLI default, passed explicitly so the retry bound below is not a guess
# Per CLI run. Measured: the text run is most of the ~3 min budget on 2 busy cores; the image run
# makes no successful model call.
RUN_TIMEOUT = {"text": 170.0, "image": 60.0}
EXIT_SOME_ERRORS = 3

# What must never reach a record of the text run: the server's answers to list-of-parts content and
# to json_schema response formats, and the HTTP errors they surface as.
TEXT_RUN_FORBIDDEN = (
    "can only concatenate",
    "Error code: 500",
    "InternalServerError",
    "OpenAIAPIError",  # langchain-openai's wrapper of a 500
    "HTTP 500",
    "literal_error",
    "Input should be a valid string",
)
# An abstention must be the judge's own unreadable answer, not a failed request: no SDK status line
# and no openai / langchain-openai exception name (OpenAIAPIError, BadRequestError, ...).
HTTP_ERROR = re.compile(
    r"Error code: \d{3}|HTTP \d{3}|\b\w*(?:APIError|ServerError|BadRequestError|StatusError|ConnectionError|"
    r"TimeoutError|RateLimitError|InvalidRequestError|NotFoundError|UnprocessableEntityError)\b"
)


@dataclass
class Run:
    process: subprocess.CompletedProcess[str]
    out: Path
    server: LlamaServer

    @property
    def records(self) -> list[dict[str, Any]]:
        path = self.out / "results.jsonl"
        assert path.is_file(), f"no results.jsonl\n{self.describe()}"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def describe(self) -> str:
        """Everything needed to diagnose a failure from the CI log alone."""
        return (
            f"exit {self.process.returncode}\n--- stdout\n{self.process.stdout[-2000:]}\n"
            f"--- stderr\n{self.process.stderr[-4000:]}\n--- server log tail\n{self.server.log_tail()}"
        )


def models_file(server: LlamaServer, path: Path) -> Path:
    common = {
        "spec": f"openai:{server.alias}",
        "base_url": server.base_url,
        # Short answers keep 3 items x (1 target + up to 10 juror calls) well inside the time budget.
        "max_tokens": 96,
        "temperature": 0,
        "timeout": 60,
    }
    # The juror is text-only: it must never be sent the image (the server would answer 500).
    path.write_text(yaml.safe_dump({TARGET: common, JUROR: {**common, "multimodal": False}}))
    return path


def evaluate(server: LlamaServer, tmp_path: Path, modality: str) -> Run:
    env = dict(os.environ)
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "LANGCHAIN_TRACING_V2",
        "LANGSMITH_API_KEY",
        "LANGCHAIN_API_KEY",
    ):
        env.pop(var, None)
    # No network: tracing on would also stall the subprocess's exit.
    env["LANGSMITH_TRACING"] = "false"
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "safebench",
        "evaluate",
        "--models",
        str(models_file(server, tmp_path / "models.yaml")),
        "--target",
        TARGET,
        "--jury",
        JUROR,
        "--modality",
        modality,
        "--limit",
        str(LIMIT),
        "--max-rounds",
        "1",
        "--concurrency",
        "1",
        "--max-attempts",
        str(MAX_ATTEMPTS),
        "--dataset",
        "sample",
        "--quiet",
        "--out",
        str(out),
    ]
    try:
        process = subprocess.run(
            command,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT[modality],
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # The server log shows what the single slot was busy with (e.g. answers that ignore max_tokens).
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(
            f"safebench evaluate --modality {modality} did not finish in {exc.timeout:.0f} s\n"
            f"--- stderr\n{stderr[-3000:]}\n--- server log tail\n{server.log_tail()}",
            pytrace=False,
        )
    return Run(process, out, server)


def record_status(record: dict[str, Any]) -> str:
    # A record-level status, where the schema has one; the verdict's status otherwise.
    return record.get("status") or record["verdict"]["status"]


def test_max_tokens_reaches_the_server(llama_server: LlamaServer) -> None:
    from safebench.models import ModelConfig
    from safebench.providers.registry import create_chat_model

    config = ModelConfig(
        spec=f"openai:{llama_server.alias}", base_url=llama_server.base_url, max_tokens=4, timeout=60
    )
    # SmolLM2 answers this in about 60 tokens at temperature 0: cheap even when the limit is lost.
    reply = create_chat_model(config).invoke("Name three colours of the rainbow.")
    finish = reply.response_metadata.get("finish_reason")
    used = (reply.usage_metadata or {}).get("output_tokens")
    assert finish == "length" and used is not None and used <= 4, (
        f"max_tokens=4 did not limit the answer: finish_reason {finish!r}, {used} completion tokens "
        "(llama-cpp-python honours only `max_tokens`, not `max_completion_tokens`)"
    )


def test_text_run_is_judged_without_server_errors(llama_server: LlamaServer, tmp_path: Path) -> None:
    run = evaluate(llama_server, tmp_path, "text")
    assert run.process.returncode in (0, EXIT_SOME_ERRORS), run.describe()

    records = run.records
    assert len(records) == LIMIT, run.describe()
    for record in records:
        where = f"record {record['item_id']}"
        dumped = json.dumps(record, ensure_ascii=False)
        for marker in TEXT_RUN_FORBIDDEN:
            assert marker not in dumped, f"{where} mentions {marker!r}: {dumped[:3000]}"
        assert isinstance(record["response"], str), f"{where}: no response: {dumped[:3000]}"
        assert record["opinions"], f"{where}: no juror opinions: {dumped[:3000]}"
        for opinion in record["opinions"]:
            who = f"{where}, juror {opinion['juror']} round {opinion['round']}"
            assert opinion["status"] in ("ok", "abstained"), f"{who}: {opinion}"
            if opinion["status"] == "abstained":
                # SmolLM2 often answers off-format: that is an abstention with the parse problem named.
                assert opinion["error"], f"{who}: abstained without a reason: {opinion}"
                assert not HTTP_ERROR.search(opinion["error"]), f"{who}: abstained on HTTP error: {opinion}"
        # Records and metrics name the target by its name in the models file, not by its spec.
        assert record["target"] == TARGET, f"{where}: target {record['target']!r}"

    metrics_path = run.out / "metrics.json"
    assert metrics_path.is_file(), run.describe()
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    assert TARGET in metrics, f"metrics.json keys: {list(metrics)}"


def test_image_run_reports_the_refused_image(llama_server: LlamaServer, tmp_path: Path) -> None:
    run = evaluate(llama_server, tmp_path, "image")
    # Every record is an error (a text-only server cannot take the image): the new exit status 3.
    assert run.process.returncode == EXIT_SOME_ERRORS, run.describe()

    records = run.records
    assert len(records) == LIMIT, run.describe()
    for record in records:
        where = f"record {record['item_id']}: {json.dumps(record, ensure_ascii=False)[:3000]}"
        assert record_status(record) == "error", where
        assert record["response"] is None, where
        assert not record["opinions"], f"jurors judged an answer that does not exist; {where}"
        error = record["error"]
        assert isinstance(error, str) and error.strip(), where
        # One clear line saying the image was the problem, carrying the server's own evidence (its
        # status or its message; llama-cpp-python 0.3.36 answers HTTP 500 "can only concatenate str
        # (not "list") to str" to any content-parts list), not a retry log.
        assert "\n" not in error.strip(), where
        assert "image" in error.lower(), where
        assert "500" in error or "can only concatenate" in error, where
        # A 4xx is not worth retrying; a 5xx may be, but never beyond --max-attempts.
        status = re.search(r"\b([45]\d\d)\b", error)
        if status and status.group(1).startswith("4"):
            assert record["calls"] == 1, where
        else:
            assert 1 <= record["calls"] <= MAX_ATTEMPTS, where

    assert (run.out / "metrics.json").is_file(), run.describe()
