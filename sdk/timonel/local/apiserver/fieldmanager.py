"""``metadata.managedFields`` and server-side apply, for the fields the served kinds have.

Kubernetes records which manager set each field so that ``kubectl apply --server-side`` and other
appliers can remove the fields they stop sending and are told when they would overwrite someone
else's (409, unless ``force``). The real implementation (structured-merge-diff) is Go only, so this
is a smaller one: a field is a path of map keys, every list is atomic (one field), and values are
compared as JSON. Ownership is written in the FieldsV1 form (``{"f:spec": {"f:predictor": ...}}``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Path = tuple[str, ...]

#: Metadata fields a manager can own; the rest (name, uid, resourceVersion...) belong to the server.
_OWNED_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")
_MISSING = object()


def now() -> str:
    """A timestamp in the RFC 3339 form Kubernetes uses (second precision, Z)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def leaves(obj: dict[str, Any], subresource: str | None = None) -> dict[Path, Any]:
    """Every field a manager could own in ``obj``: path → value (lists and scalars are leaves)."""
    found: dict[Path, Any] = {}

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(child, (*path, key))
        else:
            found[path] = value

    if subresource == "status":
        if "status" in obj:
            walk(obj["status"], ("status",))
        return found
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            for meta_key in _OWNED_METADATA:
                if meta_key in value:
                    walk(value[meta_key], ("metadata", meta_key))
        else:
            walk(value, (key,))
    return found


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def from_fields_v1(tree: dict[str, Any]) -> set[Path]:
    paths: set[Path] = set()

    def walk(node: dict[str, Any], path: Path) -> None:
        children = [k for k in node if k.startswith("f:")]
        if not children and path:
            paths.add(path)
        for key in children:
            walk(node[key], (*path, key[2:]))

    walk(tree, ())
    return paths


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    fields: set[Path]
    subresource: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> _Entry:
        return cls(
            manager=raw.get("manager", ""),
            operation=raw.get("operation", "Update"),
            api_version=raw.get("apiVersion", ""),
            time=raw.get("time", ""),
            fields=from_fields_v1(raw.get("fieldsV1") or {}),
            subresource=raw.get("subresource"),
        )

    def dump(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            raw["subresource"] = self.subresource
        return raw

    def same_slot(self, manager: str, operation: str, subresource: str | None) -> bool:
        return (self.manager, self.operation, self.subresource) == (
            manager,
            operation,
            subresource,
        )


def _entries(obj: dict[str, Any]) -> list[_Entry]:
    return [_Entry.parse(raw) for raw in obj.get("metadata", {}).get("managedFields") or []]


def _covers(owned: Path, path: Path) -> bool:
    """Whether owning ``owned`` touches ``path`` (one is a prefix of the other)."""
    shortest = min(len(owned), len(path))
    return owned[:shortest] == path[:shortest]


def _write(obj: dict[str, Any], entries: list[_Entry]) -> None:
    kept = [e.dump() for e in entries if e.fields]
    if kept:
        obj["metadata"]["managedFields"] = kept
    else:
        obj["metadata"].pop("managedFields", None)


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    subresource: str | None = None,
) -> None:
    """Give ``manager`` the fields it changed from ``old`` to ``new`` (create: all of them)."""
    before = leaves(old, subresource) if old else {}
    after = leaves(new, subresource)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    removed = set(before) - set(after)
    entries = _entries(old) if old else []
    for entry in entries:
        if entry.subresource == subresource:
            entry.fields = {
                f for f in entry.fields if not any(_covers(f, p) for p in changed | removed)
            }
    if changed:
        mine = next((e for e in entries if e.same_slot(manager, "Update", subresource)), None)
        if mine is None:
            mine = _Entry(manager, "Update", api_version, now(), set(), subresource)
            entries.append(mine)
        mine.fields |= changed
        mine.time = now()
    _write(new, entries)


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    node = obj
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict[str, Any], path: Path) -> None:
    chain = [obj]
    for key in path[:-1]:
        child = chain[-1].get(key)
        if not isinstance(child, dict):
            return
        chain.append(child)
    chain[-1].pop(path[-1], None)
    for depth in range(len(chain) - 1, 0, -1):  # drop maps the removal left empty
        if not chain[depth]:
            chain[depth - 1].pop(path[depth - 1], None)


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    force: bool,
    subresource: str | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """Server-side apply of ``applied`` by ``manager`` onto ``live`` (None when creating).

    Returns the new object and the conflicts: (manager, apiVersion, ``.dotted.path``) for every
    field another manager owns with a different value. With ``force`` there are none: ownership
    moves to ``manager``. The caller refuses the apply when conflicts are returned.
    """
    result = copy.deepcopy(live) if live else {"metadata": {}}
    entries = _entries(result)
    wanted = leaves(applied, subresource)
    current = leaves(result, subresource)
    conflicts: list[tuple[str, str, str]] = []
    for entry in entries:
        if entry.subresource != subresource or entry.same_slot(manager, "Apply", subresource):
            continue
        for owned in sorted(entry.fields):
            clash = [
                p
                for p in wanted
                if _covers(owned, p) and current.get(owned, _MISSING) != wanted.get(owned, _MISSING)
            ]
            if clash:
                conflicts.append((entry.manager, entry.api_version, "." + ".".join(owned)))
    if conflicts and not force:
        return result, conflicts

    mine = next((e for e in entries if e.same_slot(manager, "Apply", subresource)), None)
    others = {
        f for e in entries if e is not mine and e.subresource == subresource for f in e.fields
    }
    for dropped in sorted(mine.fields - set(wanted) if mine else set(), key=len, reverse=True):
        if dropped not in others:
            _remove(result, dropped)
    for path, value in wanted.items():
        for stale in [p for p in leaves(result, subresource) if p != path and _covers(p, path)]:
            _remove(result, stale)
        _set(result, path, value)
    for entry in entries:
        if entry is not mine and entry.subresource == subresource and force:
            entry.fields = {f for f in entry.fields if not any(_covers(f, p) for p in wanted)}
    if mine is None:
        mine = _Entry(manager, "Apply", api_version, now(), set(), subresource)
        entries.append(mine)
    mine.fields = set(wanted)
    mine.time = now()
    _write(result, entries)
    return result, []
