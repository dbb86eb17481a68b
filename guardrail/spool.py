"""A durable local spool for audit evidence: SQLite in WAL mode, fsync on every commit.

The guard appends each decision's record here before the action runs, so evidence exists even
if the process dies or the collector is down; a shipper (`guardrail.telemetry.Shipper`)
exports it at least once and marks records delivered only after the collector answered.
Records form a hash chain per stream. Library code: the standard library only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from guardrail._canonical import canonical_json
from guardrail._errors import GuardrailError
from guardrail._records import seal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    decision_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    UNIQUE (stream, seq)
);
CREATE INDEX IF NOT EXISTS pending ON records (rowid) WHERE delivered = 0;
"""


class SpoolError(GuardrailError):
    """The spool cannot take a record (full, unwritable, corrupt); the message says which."""


class Spool:
    """Append-only evidence spool. Thread-safe; several processes may share one file.

    Args:
        path: the SQLite file (created if missing).
        stream: the name of this writer's hash chain; a restarted writer with the same name
            continues its chain where it stopped.
        max_pending: undelivered records at which the spool counts as full and refuses.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, stream: str = "default", max_pending: int = 100_000
    ) -> None:
        self.path = Path(path)
        self.stream = stream
        self.max_pending = max_pending
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise SpoolError(
                f"cannot open the evidence spool {self.path}: {err}; choose a writable path"
            ) from err

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Seal ``record`` into this stream's chain and commit it durably; return it sealed.

        Raises:
            SpoolError: the spool is full or cannot be written; nothing was stored.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    sealed = self._append_locked(record)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return sealed
            except sqlite3.Error as err:
                raise SpoolError(f"cannot write the evidence spool {self.path}: {err}") from err

    def _append_locked(self, record: Mapping[str, Any]) -> dict[str, Any]:
        (pending,) = self._db.execute("SELECT COUNT(*) FROM records WHERE delivered = 0").fetchone()
        if pending >= self.max_pending:
            raise SpoolError(
                f"the evidence spool {self.path} is full ({pending} undelivered records); "
                f"start the shipper or raise max_pending"
            )
        last = self._db.execute(
            "SELECT seq, body FROM records WHERE stream = ? ORDER BY seq DESC LIMIT 1",
            (self.stream,),
        ).fetchone()
        seq, prev = (last[0] + 1, json.loads(last[1])["hash"]) if last else (1, "")
        sealed = seal(record, self.stream, seq, prev)
        self._db.execute(
            "INSERT INTO records (stream, seq, decision_id, kind, body) VALUES (?, ?, ?, ?, ?)",
            (self.stream, seq, sealed["decision_id"], sealed["kind"], canonical_json(sealed)),
        )
        return sealed

    def pending(self, limit: int = 512) -> list[tuple[int, dict[str, Any]]]:
        """Undelivered records, oldest first, with their row ids."""
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, body FROM records WHERE delivered = 0 ORDER BY rowid LIMIT ?",
                (limit,),
            ).fetchall()
        return [(rowid, json.loads(body)) for rowid, body in rows]

    def mark_delivered(self, rowids: list[int]) -> None:
        """Mark records delivered: only after the collector accepted them."""
        with self._lock:
            self._db.executemany(
                "UPDATE records SET delivered = 1 WHERE rowid = ?", [(r,) for r in rowids]
            )

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in the order they were written."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM records ORDER BY rowid").fetchall()
        for (body,) in rows:
            yield json.loads(body)

    def count_pending(self) -> int:
        """How many records wait for delivery."""
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM records WHERE delivered = 0").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
