"""The SQLite store: one resourceVersion counter, events for watches, compaction, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from timonel.errors import ApiError
from timonel.local.apiserver.store import Store


def obj(name: str, **extra: object) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default"}, **extra}


def test_each_write_takes_the_next_resource_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    a = store.write("isvc", obj("a"), type="ADDED")
    b = store.write("other", obj("b"), type="ADDED")
    assert (a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]) == ("1", "2")
    assert store.resource_version() == 2
    store.close()


def test_events_are_per_resource_and_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    first = store.write("isvc", obj("a"), type="ADDED")
    store.write("other", obj("x"), type="ADDED")
    store.write("isvc", obj("a", spec=1), type="MODIFIED", previous=first)
    store.write("isvc", obj("a", spec=1), type="DELETED")
    events = store.events_after("isvc", 0)
    assert [(e.resource_version, e.type) for e in events] == [
        (1, "ADDED"),
        (3, "MODIFIED"),
        (4, "DELETED"),
    ]
    assert events[1].previous == first
    assert store.get("isvc", "default", "a") is None
    store.close()


def test_compacted_history_is_410_expired(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", history=2)
    for n in range(5):
        store.write("isvc", obj("a", n=n), type="MODIFIED")
    assert [e.resource_version for e in store.events_after("isvc", 3)] == [4, 5]
    with pytest.raises(ApiError) as exc:
        store.events_after("isvc", 2)
    assert (exc.value.status.code, exc.value.status.reason) == (410, "Expired")
    assert str(exc.value) == "too old resource version: 2 (3)"
    store.close()


def test_a_reopened_store_continues_the_counter(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.write("isvc", obj("a"), type="ADDED")
    store.close()
    reopened = Store(tmp_path / "db")
    assert reopened.get("isvc", "default", "a") == obj("a") | {
        "metadata": {"name": "a", "namespace": "default", "resourceVersion": "1"}
    }
    assert reopened.write("isvc", obj("b"), type="ADDED")["metadata"]["resourceVersion"] == "2"
    assert [e.type for e in reopened.events_after("isvc", 0)] == ["ADDED", "ADDED"]
    reopened.close()
