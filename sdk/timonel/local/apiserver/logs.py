"""The ``pods/NAME/log`` subresource: a container's output, as the kubelet serves it.

On a cluster kube-apiserver forwards the request to the kubelet, which reads the container
runtime's log file. Here the kubelet is the controller's supervisor, and the "runtime's log" is
the revision's files in its ``RevisionStore``: ``server.log`` for ``kserve-container`` (every run
appended, each after a ``--- start N:`` line the supervisor writes) and
``storage-initializer.log`` for the init container. ``previous`` is the run before the current
one, as the kubelet keeps one terminated container's log; ``tailLines`` keeps the last lines;
``follow`` sends what is appended afterwards (read with ``appended``) until the pod goes. Where
the emulation differs: a follow goes on across a restart with the new run's lines, where the
kubelet ends the stream when the container ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from timonel.local.apiserver import statuses
from timonel.local.pods import (
    INITIALIZER_CONTAINER,
    ISVC_LABEL,
    REVISION_LABEL,
    SERVER_CONTAINER,
    pod_replica,
    replica_set_of,
)
from timonel.local.revisions import RevisionKey, RevisionStore

#: The line the supervisor writes before each run of the server.
RUN_MARKER = "--- start "


def log_file(store: RevisionStore, pod: dict[str, Any], container: str | None) -> Path:
    """The file holding ``container``'s output; kube-apiserver's 400 for a container the pod has
    not (or for no container named, when the pod has more than one, as kubectl then names the
    default one)."""
    metadata = pod["metadata"]
    labels = metadata.get("labels") or {}
    key = RevisionKey(
        metadata.get("namespace", "default"),
        str(labels.get(ISVC_LABEL, "")),
        # A Knative revision's pod names its revision; a Deployment's pod runs its ReplicaSet's.
        str(labels.get(REVISION_LABEL) or replica_set_of(pod)),
    )
    if container in (None, SERVER_CONTAINER):
        return store.server_log(key, pod_replica(pod))
    if container == INITIALIZER_CONTAINER:
        return store.initializer_log(key)
    raise statuses.bad_request(f"container {container} is not valid for pod {metadata['name']}")


def container_log(
    text: str, *, previous: bool, tail_lines: int | None, pod: str, container: str
) -> str:
    """The current (or previous) run's lines of a log, the last ``tail_lines`` of them."""
    runs: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.startswith(RUN_MARKER):
            runs.append([])
        else:
            runs[-1].append(line)
    if previous:
        if len(runs) < 3:
            raise statuses.bad_request(
                f'previous terminated container "{container}" in pod "{pod}" not found'
            )
        lines = runs[-2]
    else:
        lines = runs[-1]
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines > 0 else []
    return "".join(lines)


def appended(path: Path, offset: int) -> bytes:
    """The whole lines added to a log since ``offset`` bytes (none if it is gone)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return b""
    return data[: data.rfind(b"\n") + 1]


def without_run_markers(data: bytes) -> bytes:
    """Lines of a log with the supervisor's start lines taken out."""
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if not line.startswith(RUN_MARKER.encode()))
