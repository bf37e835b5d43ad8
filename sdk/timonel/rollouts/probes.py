"""Active probes: the same requests sent to both revisions through their tag routes.

Each probe is a TF Serving REST predict body, from a probe-data file (a JSON list of bodies, or
one body per line) or from the release's warmup records (``assets.extra/
tf_serving_warmup_requests``, the requests TF Serving replays at load). Every probe goes to the
stable revision and then to the canary, with ``timonel.Client`` and no retry, so an error is
counted as the clients would see it; each call is timed, and the two answers are compared
example by example (``agreement``). Requests are spread evenly over the window.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from timonel.client import Client, Retry
from timonel.errors import SpecError, TimonelError
from timonel.rollouts.agreement import compare_outputs
from timonel.rollouts.evidence import Agreement, RevisionEvidence, WindowEvidence
from timonel.rollouts.sources import Clock, Endpoint, Pair, wait_until

#: Probes send each request once: a retried error would hide what a client saw.
_NO_RETRY = Retry(attempts=1)


def load_probe_data(path: str | Path) -> list[dict[str, Any]]:
    """Predict bodies from a file: a JSON list of bodies, one body, or one body per line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            f"cannot read probe data {file}: {exc.strerror}; give a JSON file of TF Serving "
            'predict bodies, e.g. [{"instances": [[1.0, 2.0]]}]',
            field="probe_data",
        ) from exc
    try:
        document = json.loads(text)
        bodies = document if isinstance(document, list) else [document]
    except ValueError:
        try:
            bodies = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise SpecError(
                f"probe data {file} is not JSON ({exc}); expected a JSON list of TF Serving "
                "predict bodies or one body per line",
                field="probe_data",
            ) from exc
    if not bodies or not all(
        isinstance(b, dict) and ("instances" in b or "inputs" in b) for b in bodies
    ):
        raise SpecError(
            f"probe data {file} holds no predict bodies; each must be a JSON object with "
            '"instances" (rows) or "inputs" (columns), as TF Serving\'s REST API takes them',
            field="probe_data",
        )
    return bodies


def warmup_probes(release_uri: str) -> list[dict[str, Any]]:
    """Predict bodies from a release's warmup records (empty when it has none)."""
    from timonel.codec.json_tensor import to_json
    from timonel.codec.tensor_proto import request_inputs
    from timonel.releases.layout import join, split_release_uri
    from timonel.releases.storage import open_storage
    from timonel.tfserving.warmup import WARMUP_RELPATH, read_warmup

    found = split_release_uri(release_uri)
    if found is None:
        return []
    data = open_storage(release_uri).read_bytes(join(release_uri, str(found[1]), WARMUP_RELPATH))
    if data is None:
        return []
    with tempfile.TemporaryDirectory(prefix="timonel-warmup-") as folder:
        path = Path(folder) / "warmup"
        path.write_bytes(data)
        logs = read_warmup(path)
    bodies = []
    for log in logs:
        if log.WhichOneof("log_type") != "predict_log":
            continue
        request = log.predict_log.request
        inputs = request_inputs(request.inputs)
        body: dict[str, Any] = {
            "inputs": {name: to_json(value, binary=True) for name, value in inputs.items()}
        }
        if request.model_spec.signature_name:
            body["signature_name"] = request.model_spec.signature_name
        bodies.append(body)
    return bodies


def _outputs(reply: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    """A REST reply's tensors by output name (``predictions`` rows or ``outputs`` columns)."""
    if "outputs" in reply:
        value = reply["outputs"]
        return (
            {k: np.asarray(v) for k, v in value.items()}
            if isinstance(value, dict)
            else {"outputs": np.asarray(value)}
        )
    rows = reply.get("predictions", [])
    if rows and isinstance(rows[0], dict):
        return {name: np.asarray([row[name] for row in rows]) for name in rows[0]}
    return {"predictions": np.asarray(rows)}


class _Revision:
    """One revision's client and the timings and failures seen in a window."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.client = Client(endpoint.url, host=endpoint.host, timeout=timeout, retry=_NO_RETRY)
        self.latencies: list[float] = []
        self.errors = 0
        self.last_error = ""

    def send(self, model: str, body: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]] | None:
        started = time.perf_counter()
        try:
            reply = self.client.predict_json(model, body)
        except TimonelError as exc:
            self.errors += 1
            self.last_error = str(exc)
            reply = None
        self.latencies.append((time.perf_counter() - started) * 1000.0)
        return None if reply is None else _outputs(reply)

    def evidence(self) -> RevisionEvidence:
        return RevisionEvidence.from_samples(self.endpoint.revision, self.latencies, self.errors)


class ProbeSource:
    """``requests`` probe bodies per window, to each revision, cycling through ``probes``."""

    name = "probes"

    def __init__(
        self,
        probes: Sequence[Mapping[str, Any]],
        *,
        requests: int = 50,
        tolerance: float = 0.01,
        timeout: float = 30.0,
    ) -> None:
        if not probes:
            raise SpecError(
                "no probe requests: the release has no warmup records and no probe data was "
                "given; pass --probe-data FILE (TF Serving predict bodies)",
                field="probe_data",
            )
        if requests < 1:
            raise SpecError(f"probe requests per window must be 1 or more, got {requests}")
        self.probes = list(probes)
        self.requests = requests
        self.tolerance = tolerance
        self.timeout = timeout

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence:
        stable, canary = _Revision(pair.stable, self.timeout), _Revision(pair.canary, self.timeout)
        agreement = Agreement()
        try:
            for index in range(self.requests):
                body = self.probes[index % len(self.probes)]
                old, new = stable.send(pair.model, body), canary.send(pair.model, body)
                if old is not None and new is not None:
                    agreement += compare_outputs(old, new, tolerance=self.tolerance)
                left = self.requests - index - 1
                if left:
                    clock.sleep(max(0.0, end - clock.now()) / (left + 1))
        finally:
            stable.client.close()
            canary.client.close()
        wait_until(clock, end)
        return WindowEvidence(self.name, stable.evidence(), canary.evidence(), agreement)
