"""Where the local controller keeps revisions on disk: one folder per revision.

    <state>/revisions/<namespace>/<isvc>/owner.json           the InferenceService's uid
    <state>/revisions/<namespace>/<isvc>/<revision>/revision.json   name, number, template, ready
    <state>/revisions/<namespace>/<isvc>/<revision>/model/    the storage initializer's copy
    <state>/revisions/<namespace>/<isvc>/<revision>/storage-initializer.log
    <state>/revisions/<namespace>/<isvc>/<revision>/server.log   (server-N.log: the N-th replica)

Knative keeps Revision objects in the cluster; here they are files, so a restarted ``timonel
local`` keeps numbering revisions where it stopped and knows which ones were ever ready (a
revision that was ready stays routable after its process stops, as a Knative revision scaled to
zero does). An InferenceService deleted and created again under the same name gets a new uid, and
its old revisions are dropped, as Knative's garbage collector would drop them with their owner.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.errors import StorageError
from timonel.local.reconcile import Revision

_OWNER = "owner.json"
_RECORD = "revision.json"


@dataclass(frozen=True)
class RevisionKey:
    """A revision of one InferenceService."""

    namespace: str
    isvc: str
    revision: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.revision}"


@dataclass(frozen=True)
class StoredRevision:
    revision: Revision
    has_been_ready: bool


class RevisionStore:
    """Revision records and working folders under ``<state>/revisions``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "revisions"

    def isvc_dir(self, namespace: str, isvc: str) -> Path:
        return self.root / namespace / isvc

    def revision_dir(self, key: RevisionKey) -> Path:
        return self.isvc_dir(key.namespace, key.isvc) / key.revision

    def model_dir(self, key: RevisionKey) -> Path:
        return self.revision_dir(key) / "model"

    def server_log(self, key: RevisionKey, replica: int = 0) -> Path:
        """The log of one of the revision's processes: ``server.log`` for the first, then
        ``server-1.log``, ``server-2.log``... for those the autoscaler adds."""
        return self.revision_dir(key) / ("server.log" if replica == 0 else f"server-{replica}.log")

    def initializer_log(self, key: RevisionKey) -> Path:
        return self.revision_dir(key) / "storage-initializer.log"

    def known(self) -> list[tuple[str, str]]:
        """Every (namespace, isvc) with revisions on disk."""
        if not self.root.is_dir():
            return []
        return sorted(
            (namespace.name, isvc.name)
            for namespace in self.root.iterdir()
            if namespace.is_dir()
            for isvc in namespace.iterdir()
            if isvc.is_dir()
        )

    def owner(self, namespace: str, isvc: str) -> str | None:
        """The uid of the InferenceService whose revisions are on disk under this name."""
        record = _read_json(self.isvc_dir(namespace, isvc) / _OWNER)
        return str(record.get("uid")) if record is not None else None

    def load(self, namespace: str, isvc: str, uid: str) -> list[StoredRevision]:
        """The revisions of this InferenceService; those of an earlier one with its name go."""
        folder = self.isvc_dir(namespace, isvc)
        owner = _read_json(folder / _OWNER)
        if owner is not None and owner.get("uid") != uid:
            self.delete(namespace, isvc)
            owner = None
        if owner is None:
            _write_json(folder / _OWNER, {"uid": uid})
            return []
        stored = []
        for record_path in folder.glob(f"*/{_RECORD}"):
            record = _read_json(record_path)
            if record is None:
                continue
            revision = Revision(
                name=str(record["name"]),
                number=int(record["number"]),
                template=dict(record.get("template") or {}),
                metadata=record.get("metadata"),
            )
            stored.append(StoredRevision(revision, bool(record.get("hasBeenReady"))))
        return sorted(stored, key=lambda item: item.revision.number)

    def save(self, key: RevisionKey, revision: Revision, *, has_been_ready: bool) -> None:
        record = {
            "name": revision.name,
            "number": revision.number,
            "template": dict(revision.template),
            "metadata": None if revision.metadata is None else dict(revision.metadata),
            "hasBeenReady": has_been_ready,
        }
        _write_json(self.revision_dir(key) / _RECORD, record)

    def delete(self, namespace: str, isvc: str) -> None:
        shutil.rmtree(self.isvc_dir(namespace, isvc), ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"cannot read the local controller's record {path}: {exc}; "
            "delete the file (the revision is recreated) or run `timonel local down` and `up` again"
        ) from exc
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Write through a temporary file so a crash never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(temporary, path)
