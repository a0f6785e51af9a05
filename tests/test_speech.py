"""Speech: espeak-ng and hf engines, 16 kHz resampling, speak_all, and the validator's audio checks."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safebench.dataset.validate import Problem, check_modality, format_problems, validate_dataset
from safebench.generation import speech
from safebench.generation.speech import (
    SpeechError,
    read_wav,
    resample,
    speak_all,
    synthesize,
    synthesize_all,
    wav_bytes,
)
from safebench.resources import default_taxonomy_path

# The session-scoped `tiny_vits_path` fixture (one tiny TTS model build per test run).
pytest_plugins = ["tests.tiny_audio_model"]

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)
QUERY = "How could someone get around the rules on personal privacy?"


@dataclass
class Query:
    id: str
    text: str


def wav_params(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()


# --- espeak-ng ------------------------------------------------------------------------------------------


@needs_espeak
def test_espeak_writes_a_16khz_mono_16bit_wav_of_the_query(tmp_path: Path) -> None:
    out = synthesize(QUERY, tmp_path / "q-female.wav", "female")

    rate, channels, width, frames = wav_params(out.path)
    assert (rate, channels, width) == (16_000, 1, 2)
    assert frames > 8_000  # a dozen words take well over half a second
    assert out.duration_s == round(frames / 16_000, 3) > 0
    assert out.sha256 == hashlib.sha256(out.path.read_bytes()).hexdigest()
    assert (out.voice, out.engine, out.engine_voice) == ("female", "espeak-ng", "en-us+f3")
    samples, _ = read_wav(out.path)
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence
    assert not list(tmp_path.glob("*.tmp"))


@needs_espeak
def test_espeak_is_deterministic_and_the_voices_differ(tmp_path: Path) -> None:
    male = synthesize(QUERY, tmp_path / "m1.wav", "male")
    again = synthesize(QUERY, tmp_path / "m2.wav", "male")
    female = synthesize(QUERY, tmp_path / "f.wav", "female")

    assert male.path.read_bytes() == again.path.read_bytes()
    assert male.sha256 == again.sha256 != female.sha256
    assert male.engine_voice == "en-us+m3"


@needs_espeak
def test_text_starting_with_a_dash_is_spoken_not_parsed_as_an_option(tmp_path: Path) -> None:
    out = synthesize("-v is not a voice option here", tmp_path / "dash.wav", "male")
    assert wav_params(out.path)[3] > 4_000


def test_missing_espeak_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(SpeechError) as failed:
        synthesize(QUERY, tmp_path / "q.wav", "male")
    message = str(failed.value)
    assert "\n" not in message
    assert "apt-get install espeak-ng" in message and "brew install espeak-ng" in message
    assert not (tmp_path / "q.wav").exists()


async def test_speak_all_fails_once_up_front_without_espeak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(SpeechError, match="apt-get install espeak-ng"):
        await speak_all([Query("a-001", QUERY)], tmp_path)
    assert not (tmp_path / "audio").exists()


def test_unknown_engine_and_empty_text_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown speech engine 'festival'"):
        synthesize(QUERY, tmp_path / "q.wav", "male", engine="festival")
    with pytest.raises(ValueError, match="empty"):
        synthesize("  \n ", tmp_path / "q.wav", "male")


@needs_espeak
async def test_speak_all_writes_every_voice_and_returns_refs_in_query_order(tmp_path: Path) -> None:
    queries = [Query(f"s-{n:03d}", f"{QUERY} Case {n}.") for n in range(3)]
    events: list[dict[str, Any]] = []

    refs = await speak_all(queries, tmp_path, concurrency=2, on_event=events.append)

    assert len(refs) == 3
    for query, audio in zip(queries, refs, strict=True):
        assert [a.voice for a in audio] == ["male", "female"]
        for ref in audio:
            assert ref.path == f"audio/{query.id}-{ref.voice}.wav"
            assert ref.sha256 == hashlib.sha256((tmp_path / ref.path).read_bytes()).hexdigest()
    assert len(events) == 6 and all(e["event"] == "progress" and e["stage"] == "speech" for e in events)
    assert {(e["query_id"], e["voice"], e["engine_voice"]) for e in events} == {
        (q.id, v, name) for q in queries for v, name in (("male", "en-us+m3"), ("female", "en-us+f3"))
    }
    # Same text, same bytes, whatever the concurrency; one engine per voice works too.
    [[again]] = await synthesize_all(queries[:1], tmp_path / "again", ("male",), engine={"male": "espeak-ng"})
    assert again.sha256 == refs[0][0].sha256 and again.duration_s > 0


async def test_speak_all_refuses_bad_ids_and_voices_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be a file name"):
        await speak_all([Query("../escape", QUERY)], tmp_path)
    for voices in (("male", "robot"), ("female", "female")):
        with pytest.raises(ValueError, match="each of male, female at most once"):
            await speak_all([Query("a-001", QUERY)], tmp_path, voices)  # type: ignore[arg-type]
    assert not list(tmp_path.rglob("*.wav"))


# --- resampling -------------------------------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def test_resampling_keeps_the_speech_band() -> None:
    out = resample(tone(1_000, 22_050), 22_050, 16_000)
    assert len(out) == 16_000
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * 16_000 / len(out) == pytest.approx(1_000, abs=2)
    assert np.sqrt(2 * np.mean(out[500:-500] ** 2)) == pytest.approx(1.0, abs=0.01)  # amplitude kept


def test_resampling_filters_what_16khz_cannot_hold() -> None:
    # 10 kHz is above the new 8 kHz Nyquist: a band-limited resampler removes it; linear interpolation
    # would fold it back to 6 kHz at a large fraction of its amplitude.
    out = resample(tone(10_000, 22_050), 22_050, 16_000)
    assert np.sqrt(2 * np.mean(out[500:-500] ** 2)) < 0.01


def test_wav_round_trip_is_exact_at_16_bits() -> None:
    samples = (np.arange(-32768, 32768, 97) / 32768.0).astype(np.float32)
    decoded, rate = read_wav(wav_bytes(samples, 16_000))
    assert rate == 16_000
    assert np.array_equal(decoded, samples)


# --- the hf engine on a tiny random VITS ------------------------------------------------------------------


def test_hf_engine_speaks_16khz_wav_deterministically_per_speaker(
    tiny_vits_path: Path, tmp_path: Path
) -> None:
    engine = f"hf:{tiny_vits_path}"
    male = synthesize("how could someone get around the rules?", tmp_path / "m.wav", "male", engine=engine)
    again = synthesize("how could someone get around the rules?", tmp_path / "m2.wav", "male", engine=engine)
    female = synthesize(
        "how could someone get around the rules?", tmp_path / "f.wav", "female", engine=engine
    )
    pinned = synthesize(
        "how could someone get around the rules?", tmp_path / "p.wav", "male", engine=f"{engine}#1"
    )

    rate, channels, width, frames = wav_params(male.path)
    assert (rate, channels, width) == (16_000, 1, 2) and frames > 0 and male.duration_s > 0
    assert male.path.read_bytes() == again.path.read_bytes()  # seeded
    assert (male.engine_voice, female.engine_voice) == ("speaker 0", "speaker 1")
    assert male.sha256 != female.sha256
    assert pinned.sha256 == female.sha256 and pinned.engine_voice == "speaker 1"


def test_hf_engine_without_a_model_folder_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="is not a transformers model folder") as failed:
        synthesize(QUERY, tmp_path / "q.wav", "male", engine=f"hf:{tmp_path / 'nothing-here'}")
    assert "\n" not in str(failed.value)


# --- the validator's audio checks -------------------------------------------------------------------------


def _wav(path: Path, seconds: float = 0.5, rate: int = 16_000, channels: int = 1) -> str:
    """A tone WAV at `path`; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (tone(440, rate, seconds) * 8_000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(pcm, channels).tobytes())
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _item(n: int, audio: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f"item-{n}", "scenario": "medical_advice", "category": "consultation"}
    item["text"] = "Q?"
    if audio is not None:
        item["audio"] = audio
    return item


def _write(root: Path, rows: list[dict[str, Any]]) -> None:
    (root / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    """A valid dataset: item 1 with both voices, item 2 without audio."""
    root = tmp_path / "ds"
    root.mkdir()
    shutil.copyfile(default_taxonomy_path(), root / "taxonomy.yaml")
    refs = [
        {"path": f"audio/item-1-{v}.wav", "sha256": _wav(root / f"audio/item-1-{v}.wav"), "voice": v}
        for v in ("male", "female")
    ]
    _write(root, [_item(1, refs), _item(2)])
    return root


def _audio_problem(root: Path, **entry: Any) -> Problem:
    """The one problem of a dataset whose item 3 (line 3) has the audio entry `entry`."""
    rows = [json.loads(line) for line in (root / "items.jsonl").read_text().splitlines()]
    _write(root, [*rows, _item(3, [{"path": "a.wav", "sha256": "0" * 64, "voice": "male", **entry}])])
    problems = validate_dataset(root)
    assert len(problems) == 1, format_problems(problems)
    assert (problems[0].file, problems[0].line) == ("items.jsonl", 3)
    return problems[0]


def test_valid_audio_entries_pass(ds: Path) -> None:
    assert validate_dataset(ds) == []


def test_corrupt_wav(ds: Path) -> None:
    (ds / "bad.wav").write_bytes(b"RIFF....WAVEfmt not really a wav file")
    problem = _audio_problem(ds, path="bad.wav")
    assert problem.field == "audio[0].path" and "corrupt or not a PCM WAV" in problem.message


def test_truncated_wav(ds: Path) -> None:
    _wav(ds / "cut.wav")
    (ds / "cut.wav").write_bytes((ds / "cut.wav").read_bytes()[:-1000])
    assert "truncated" in _audio_problem(ds, path="cut.wav").message


@pytest.mark.parametrize(
    ("rate", "channels", "found"),
    [(22_050, 1, "22050 Hz, 1 channel(s)"), (16_000, 2, "16000 Hz, 2 channel(s)")],
)
def test_wrong_format(ds: Path, rate: int, channels: int, found: str) -> None:
    _wav(ds / "x.wav", rate=rate, channels=channels)
    problem = _audio_problem(ds, path="x.wav")
    assert problem.field == "audio[0].path"
    assert found in problem.message and "must be 16000 Hz mono 16-bit" in problem.message


def test_empty_wav(ds: Path) -> None:
    _wav(ds / "empty.wav", seconds=0)
    assert "no samples" in _audio_problem(ds, path="empty.wav").message


def test_checksum_mismatch(ds: Path) -> None:
    actual = _wav(ds / "x.wav")
    problem = _audio_problem(ds, path="x.wav", sha256="f" * 64)
    assert problem.field == "audio[0].sha256" and f"file has {actual}" in problem.message


def test_missing_file(ds: Path) -> None:
    assert "audio file not found: nope.wav" in _audio_problem(ds, path="nope.wav").message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside.wav", "must not contain '..'"),
        ("/etc/outside.wav", "is absolute"),
        ("link.wav", "symlink"),
    ],
)
def test_paths_escaping_the_folder(ds: Path, path: str, message: str) -> None:
    _wav(ds.parent / "outside.wav")
    (ds / "link.wav").symlink_to(ds.parent / "outside.wav")
    problem = _audio_problem(ds, path=path)
    assert problem.field == "audio[0].path" and message in problem.message


def test_every_audio_problem_is_listed(ds: Path) -> None:
    _wav(ds / "x.wav", rate=8_000)
    rows = [json.loads(line) for line in (ds / "items.jsonl").read_text().splitlines()]
    bad = [
        {"path": "x.wav", "sha256": "0" * 64, "voice": "male"},
        {"path": "gone.wav", "sha256": "NOT-HEX", "voice": "male"},
    ]
    _write(ds, [*rows, _item(3, bad)])
    fields = sorted(p.field or "" for p in validate_dataset(ds))
    assert fields == [
        "audio[0].path",
        "audio[1].path",
        "audio[1].sha256",
        "audio[1].sha256",
        "audio[1].voice",
    ]


# --- datasets and modalities ------------------------------------------------------------------------------


def test_audio_modalities_need_the_voice_on_every_item_evaluated(ds: Path) -> None:
    assert check_modality(ds, "image", "female") == []
    assert check_modality(ds, "audio", "female", {"item-1"}) == []
    [missing] = check_modality(ds, "audio+text", "male")
    assert (missing.line, missing.field) == (2, "audio") and "'item-2'" in missing.message
    [unknown] = check_modality(ds, "audio", "robot")
    assert "no item has a 'robot' voice (voices here: female, male)" in unknown.message


def test_audio_modality_on_a_dataset_without_audio(ds: Path) -> None:
    _write(ds, [_item(1), _item(2)])
    [problem] = check_modality(ds, "audio", "female")
    assert problem.line is None and "no item has audio" in problem.message
