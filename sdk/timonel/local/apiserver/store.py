"""The local cluster's state: objects, the global resourceVersion and recent changes, in SQLite.

etcd's role in a real cluster. Every write takes the next resourceVersion from one counter, stores
the object and appends a watch event in the same transaction, so a restarted server continues the
counter and a watcher resumes from the resourceVersion it last saw. Only the newest ``history``
events are kept; asking for changes from before them is answered with 410 Expired, as a compacted
etcd does.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.kube.resources import Kind
from timonel.local.apiserver import statuses

#: How many past events are kept for watches that resume from an older resourceVersion.
DEFAULT_HISTORY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name));
CREATE TABLE IF NOT EXISTS events (
    resource_version INTEGER PRIMARY KEY, resource TEXT NOT NULL, type TEXT NOT NULL,
    body TEXT NOT NULL, previous TEXT);
INSERT OR IGNORE INTO counters VALUES ('resourceVersion', 0), ('compacted', 0);
"""


def resource_key(kind: Kind) -> str:
    """How the store names a kind's objects: ``serving.kserve.io/inferenceservices``."""
    return f"{kind.group}/{kind.plural}" if kind.group else kind.plural


@dataclass(frozen=True)
class Event:
    """One change: ADDED, MODIFIED or DELETED, with the object after it (and before, if any)."""

    resource_version: int
    type: str
    object: dict[str, Any]
    previous: dict[str, Any] | None


class Store:
    """Objects keyed by (resource, namespace, name); cluster-scoped objects use namespace ""."""

    def __init__(self, path: Path | str, *, history: int = DEFAULT_HISTORY) -> None:
        self.history = history
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def resource_version(self) -> int:
        """The newest resourceVersion handed out (0 on a new store)."""
        with self._lock:
            return self._counter("resourceVersion")

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM objects WHERE resource=? AND namespace=? AND name=?",
                (resource, namespace, name),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def objects(
        self, resource: str, namespace: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Objects of a resource (in one namespace, or all) and the resourceVersion they are at."""
        query = "SELECT body FROM objects WHERE resource=?"
        args: tuple[str, ...] = (resource,)
        if namespace is not None:
            query += " AND namespace=?"
            args += (namespace,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY namespace, name", args).fetchall()
            current = self._counter("resourceVersion")
        return [json.loads(r[0]) for r in rows], current

    def write(
        self,
        resource: str,
        obj: dict[str, Any],
        *,
        type: str,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store (or, for DELETED, remove) ``obj`` at the next resourceVersion and record the event.

        Returns the object as stored, with ``metadata.resourceVersion`` set.
        """
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            version = self._counter("resourceVersion") + 1
            self._db.execute("UPDATE counters SET value=? WHERE name='resourceVersion'", (version,))
            stored = {**obj, "metadata": {**meta, "resourceVersion": str(version)}}
            body = json.dumps(stored, separators=(",", ":"))
            if type == "DELETED":
                self._db.execute(
                    "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", key
                )
            else:
                self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", (*key, body))
            self._db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                (version, resource, type, body, json.dumps(previous) if previous else None),
            )
            self._compact(version)
        return stored

    def events_after(self, resource: str, resource_version: int) -> list[Event]:
        """Changes to ``resource`` newer than ``resource_version``, oldest first.

        Raises a 410 Expired ApiError when events after it were already compacted away.
        """
        with self._lock:
            compacted = self._counter("compacted")
            if resource_version < compacted:
                raise statuses.expired(resource_version, compacted)
            rows = self._db.execute(
                "SELECT resource_version, type, body, previous FROM events "
                "WHERE resource=? AND resource_version>? ORDER BY resource_version",
                (resource, resource_version),
            ).fetchall()
        return [
            Event(rv, kind, json.loads(body), json.loads(prev) if prev else None)
            for rv, kind, body, prev in rows
        ]

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0])

    def _compact(self, newest: int) -> None:
        oldest_kept = newest - self.history + 1
        if oldest_kept <= 1:
            return
        self._db.execute("DELETE FROM events WHERE resource_version<?", (oldest_kept,))
        self._db.execute(
            "UPDATE counters SET value=? WHERE name='compacted' AND value<?",
            (oldest_kept - 1, oldest_kept - 1),
        )
