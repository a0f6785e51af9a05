"""Speech for every query: each query spoken in a male and a female voice, as 16 kHz mono 16-bit WAV.

Engines:
- `espeak-ng` (built in; a Debian package): voices `en-us+m3` (male) and `en-us+f3` (female). It is
  deterministic, so the same text and voice give byte-identical files.
- `hf:<local folder>`: a transformers text-to-speech model (e.g. VITS / MMS-TTS) run through
  `pipeline("text-to-speech")`. A multi-speaker model speaks `male` as speaker 0 and `female` as
  speaker 1 (which is which depends on the model: pin one with `hf:<folder>#<speaker id>`); a
  single-speaker model speaks both voices alike, so give `speak_all` one engine per voice instead.
  Its sampling noise is seeded with `seed` (espeak-ng has none and ignores it).

Every engine's output is resampled to 16 kHz with a Kaiser-windowed sinc polyphase filter (`resample`):
band-limited, so unlike linear interpolation it neither aliases the 8-11 kHz band of a 22.05 kHz voice
into the speech band nor dulls the highs below 8 kHz.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import io
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from safebench.schema import AudioRef

SAMPLE_RATE = 16_000
Voice = Literal["male", "female"]
VOICES: tuple[Voice, ...] = ("male", "female")
ESPEAK = "espeak-ng"
ESPEAK_VOICES: dict[str, str] = {"male": "en-us+m3", "female": "en-us+f3"}
ESPEAK_MISSING = (
    "espeak-ng is not installed (it speaks the queries): install it with `apt-get install espeak-ng` "
    "(Debian/Ubuntu) or `brew install espeak-ng` (macOS), or choose another engine with hf:<folder>"
)
HF_SPEAKERS: dict[str, int] = {"male": 0, "female": 1}
AUDIO_DIR = "audio"
# Query ids become file names: no separators, no "..", nothing a shell or a filesystem trips over.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class SpeechError(RuntimeError):
    """A speech engine is missing or failed; the message is one line saying what to do."""


@dataclass(frozen=True)
class Speech:
    """One spoken query: the WAV file and what made it (the AudioRef plus provenance)."""

    path: Path
    sha256: str
    voice: str  # "male" / "female"
    engine: str  # "espeak-ng" or "hf:<folder>"
    engine_voice: str  # the engine's own voice name, e.g. "en-us+f3" or "speaker 1"
    duration_s: float

    def audio_ref(self, root: Path) -> AudioRef:
        """The `items.jsonl` entry: the path relative to the dataset folder `root`."""
        return AudioRef(path=self.path.relative_to(root).as_posix(), sha256=self.sha256, voice=self.voice)

    def provenance(self) -> dict[str, Any]:
        return {
            "voice": self.voice,
            "engine": self.engine,
            "engine_voice": self.engine_voice,
            "duration_s": self.duration_s,
        }


class SpeakableQuery(Protocol):
    """Anything with an id and a text: a GeneratedQuery, a dataset Item."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...


# --- WAV and resampling ----------------------------------------------------------------------------------


def read_wav(source: Path | bytes) -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1), sample rate) of a PCM WAV; ValueError when it is not one."""
    try:
        with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.getnframes()
            data = wav.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a valid PCM WAV file: {str(exc) or 'unexpected end of file'}") from exc
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = "<i2" if width == 2 else "<i4"
        samples = np.frombuffer(data, dtype=dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"unsupported WAV sample width: {8 * width} bits")
    usable = len(samples) - len(samples) % channels  # a truncated last frame is dropped
    samples = samples[:usable].reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples, rate


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """Mono 16-bit PCM WAV bytes of float samples (clipped to [-1, 1)); the same samples, the same bytes."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def resample(
    samples: np.ndarray, from_rate: int, to_rate: int, *, zero_crossings: int = 16, beta: float = 8.6
) -> np.ndarray:
    """Band-limited resampling: a Kaiser-windowed sinc low-pass at the lower Nyquist, in polyphase form.

    With up/down = to_rate/from_rate in lowest terms, output sample n sits at input time n*down/up, so
    only `up` distinct fractional offsets occur: one filter row per offset is computed once (the
    polyphase bank) and each output is a dot product of one row with the input around it. Each row is
    normalised to unit DC gain. float64 throughout, so the result is deterministic.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if from_rate == to_rate or x.size == 0:
        return x.astype(np.float32)
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    cutoff = min(1.0, to_rate / from_rate)  # as a fraction of the input Nyquist
    half = math.ceil(zero_crossings / cutoff)  # taps on each side, in input samples
    taps = np.arange(-half + 1, half + 1)
    distance = taps[None, :] - (np.arange(up) / up)[:, None]  # (phase, tap), in input samples
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (distance / half) ** 2, 0.0, None))) / np.i0(beta)
    bank = cutoff * np.sinc(cutoff * distance) * window
    bank /= bank.sum(axis=1, keepdims=True)
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])
    n_out = -(-x.size * up // down)  # ceil
    out = np.empty(n_out)
    chunk = 1 << 15  # bounds the (outputs x taps) index matrix to a few MB for long clips
    for start in range(0, n_out, chunk):
        n = np.arange(start, min(start + chunk, n_out))
        base, phase = np.divmod(n * down, up)
        index = base[:, None] + taps[None, :] + half
        out[n] = np.einsum("ij,ij->i", padded[index], bank[phase])
    return out.astype(np.float32)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    # write then rename, so a crash never leaves a half-written WAV behind
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- engines ------------------------------------------------------------------------------------------


def check_engine(engine: str) -> None:
    """Fail fast (SpeechError, one line) when `engine` cannot run here; ValueError for a bad spec."""
    if engine == ESPEAK:
        if shutil.which(ESPEAK) is None:
            raise SpeechError(ESPEAK_MISSING)
        return
    if engine.startswith("hf:"):
        folder, _ = _hf_spec(engine)
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise SpeechError(f"{engine}: needs {' and '.join(missing)}: pip install torch 'safebench[hf]'")
        if not (folder / "config.json").is_file():
            raise SpeechError(f"{engine}: {folder} is not a transformers model folder (no config.json)")
        return
    raise ValueError(_unknown_engine(engine))


def _unknown_engine(engine: str) -> str:
    return f"unknown speech engine {engine!r}: use {ESPEAK!r} or 'hf:<model folder>'"


def _espeak(text: str, voice: str) -> tuple[np.ndarray, int, str]:
    if voice not in ESPEAK_VOICES:
        raise ValueError(f"unknown voice {voice!r} for espeak-ng: use one of {', '.join(ESPEAK_VOICES)}")
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise SpeechError(ESPEAK_MISSING)
    name = ESPEAK_VOICES[voice]
    with tempfile.TemporaryDirectory(prefix="safebench-speech-") as tmp:
        # The text goes in a file, never on the command line: a query starting with "-" is not an option.
        text_file, wav_file = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
        text_file.write_text(text, encoding="utf-8")
        command = [exe, "-v", name, "-b", "1", "-f", str(text_file), "-w", str(wav_file)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0 or not wav_file.is_file():
            reason = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
            raise SpeechError(f"espeak-ng failed for voice {name}: {reason}")
        samples, rate = read_wav(wav_file.read_bytes())
    return samples, rate, name


_HF_PIPELINES: dict[str, tuple[Any, threading.Lock]] = {}
_HF_LOCK = threading.Lock()


def _hf_spec(engine: str) -> tuple[Path, int | None]:
    """`hf:<folder>` or `hf:<folder>#<speaker id>`."""
    location, _, speaker = engine.removeprefix("hf:").partition("#")
    if not location:
        raise ValueError(f"speech engine {engine!r}: give a model folder, hf:<folder>")
    if speaker and not speaker.isdigit():
        raise ValueError(f"speech engine {engine!r}: the speaker after '#' must be a number")
    return Path(location).expanduser(), int(speaker) if speaker else None


def _hf_pipeline(folder: Path) -> tuple[Any, threading.Lock]:
    key = str(folder.resolve())
    with _HF_LOCK:
        if key not in _HF_PIPELINES:
            from transformers import pipeline

            # One generate at a time per model: the seed is global torch state.
            _HF_PIPELINES[key] = (pipeline("text-to-speech", model=key, device="cpu"), threading.Lock())
        return _HF_PIPELINES[key]


def _hf(engine: str, text: str, voice: str, seed: int) -> tuple[np.ndarray, int, str]:
    import torch

    check_engine(engine)
    folder, speaker = _hf_spec(engine)
    tts, lock = _hf_pipeline(folder)
    speakers = int(getattr(tts.model.config, "num_speakers", 1) or 1)
    forward: dict[str, Any] = {}
    if speaker is None and speakers > 1:
        if voice not in HF_SPEAKERS:
            raise ValueError(f"unknown voice {voice!r}: use one of {', '.join(HF_SPEAKERS)}")
        speaker = HF_SPEAKERS[voice]
    if speaker is not None:
        if speaker >= speakers:
            raise SpeechError(f"{engine}: speaker {speaker} out of range (the model has {speakers})")
        forward["speaker_id"] = speaker
    with lock:
        torch.manual_seed(seed)
        out = tts(text, forward_params=forward)
    samples = np.asarray(out["audio"], dtype=np.float32).reshape(-1)
    if samples.size == 0:
        raise SpeechError(f"{engine}: the model produced no audio")
    return samples, int(out["sampling_rate"]), "default speaker" if speaker is None else f"speaker {speaker}"


def synthesize(text: str, out_path: Path, voice: Voice, *, engine: str = ESPEAK, seed: int = 0) -> Speech:
    """Speak `text` into `out_path` as a 16 kHz mono 16-bit WAV (deterministic for the same inputs)."""
    spoken = " ".join(text.split())
    if not spoken:
        raise ValueError("nothing to speak: the text is empty")
    if engine == ESPEAK:
        samples, rate, engine_voice = _espeak(spoken, voice)
    elif engine.startswith("hf:"):
        samples, rate, engine_voice = _hf(engine, spoken, voice, seed)
    else:
        raise ValueError(_unknown_engine(engine))
    samples = resample(samples, rate, SAMPLE_RATE)
    if samples.size == 0:
        raise SpeechError(f"{engine}: no audio for voice {engine_voice}")
    data = wav_bytes(samples, SAMPLE_RATE)
    out_path = Path(out_path)
    _write_atomic(out_path, data)
    return Speech(
        path=out_path,
        sha256=_sha256(data),
        voice=voice,
        engine=engine,
        engine_voice=engine_voice,
        duration_s=round(samples.size / SAMPLE_RATE, 3),
    )


def audio_path(out_dir: Path, query_id: str, voice: str) -> Path:
    """`<out>/audio/<query id>-<voice>.wav`; ids that are not plain file names are refused."""
    if not _SAFE_ID.match(query_id) or ".." in query_id:
        raise ValueError(f"query id {query_id!r} cannot be a file name (letters, digits, '_', '-', '.')")
    return Path(out_dir) / AUDIO_DIR / f"{query_id}-{voice}.wav"


async def synthesize_all(
    queries: Sequence[SpeakableQuery],
    out_dir: Path,
    voices: Sequence[Voice] = VOICES,
    *,
    engine: str | Mapping[str, str] = ESPEAK,
    seed: int = 0,
    concurrency: int = 2,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[list[Speech]]:
    """Speak every query in every voice into `<out_dir>/audio/`: per query (in order), one Speech per
    voice (in `voices` order).

    `engine` is one spec for all voices or a mapping voice -> spec (e.g. one single-speaker model per
    voice). Every engine is checked before the first file is written, so a missing espeak-ng fails once,
    up front. `on_event` gets `{"event": "progress", "stage": "speech", ...}` as each file is written.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    unknown = [v for v in voices if v not in VOICES]
    if unknown or len(set(voices)) != len(voices):
        raise ValueError(f"voices {list(voices)}: each of {', '.join(VOICES)} at most once")
    engines = {v: engine[v] if isinstance(engine, Mapping) else engine for v in voices}
    for spec in dict.fromkeys(engines.values()):
        check_engine(spec)
    out_dir = Path(out_dir)
    jobs = [(q, v, audio_path(out_dir, q.id, v)) for q in queries for v in voices]
    limit = asyncio.Semaphore(concurrency)

    async def one(query: SpeakableQuery, voice: Voice, path: Path) -> Speech:
        async with limit:
            speech = await asyncio.to_thread(
                synthesize, query.text, path, voice, engine=engines[voice], seed=seed
            )
        if on_event is not None:
            on_event({"event": "progress", "stage": "speech", "query_id": query.id, **speech.provenance()})
        return speech

    speeches = await asyncio.gather(*(one(*job) for job in jobs))
    n = len(voices)
    return [list(speeches[i * n : (i + 1) * n]) for i in range(len(queries))]


async def speak_all(
    queries: Sequence[SpeakableQuery],
    out_dir: Path,
    voices: Sequence[Voice] = VOICES,
    *,
    engine: str | Mapping[str, str] = ESPEAK,
    seed: int = 0,
    concurrency: int = 2,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[list[AudioRef]]:
    """`synthesize_all`, as the `Item.audio` of each query: AudioRefs relative to `out_dir`
    (`audio/<query id>-<voice>.wav`). The engine's voice names: `Speech.provenance()`."""
    spoken = await synthesize_all(
        queries, out_dir, voices, engine=engine, seed=seed, concurrency=concurrency, on_event=on_event
    )
    return [[speech.audio_ref(Path(out_dir)) for speech in row] for row in spoken]
