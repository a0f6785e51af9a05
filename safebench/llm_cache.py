"""A SQLite cache of model calls keyed by (model + parameters, prompt), for dataset generation.

Attach it to a chat model (`model.cache = SQLiteLLMCache(path)`): a rerun after a crash, or with the
same seed, gets every finished call back from disk instead of calling the model again, which makes
generation resumable and reproducible. It implements langchain-core's `BaseCache`, the interface of
langchain-community's `SQLiteCache`, without pulling in that (now sunset) package and SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

# Only what a chat model's reply is made of: the cache file is data, never a recipe for other objects.
_ALLOWED = [Generation, ChatGeneration, AIMessage]


def _revive(text: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `loads` is marked beta
        return loads(text, allowed_objects=_ALLOWED)


_SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, llm TEXT, prompt TEXT, generations TEXT)"


class SQLiteLLMCache(BaseCache):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with self._lock:
            row = self._db.execute(
                "SELECT generations FROM calls WHERE key = ?", (self._key(prompt, llm_string),)
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return [_revive(g) for g in json.loads(row[0])]

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Any]) -> None:
        # Each call lands in its own transaction: a crash loses at most the calls still in flight.
        payload = json.dumps([dumps(g) for g in return_val])
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?)",
                (self._key(prompt, llm_string), llm_string, prompt, payload),
            )

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self._db.execute("DELETE FROM calls")

    def close(self) -> None:
        with self._lock:
            self._db.close()
