"""The Prometheus source against a real Prometheus (Debian's ``prometheus``) on 127.0.0.1,
scraping the queue-proxy metrics of the toy revisions: it reaches the probes' decisions."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from rollouts.toyrevisions import Revision, probe_bodies
from rollouts.toyserver import ERRORS, GOOD, SLOW, Behaviour
from timonel.errors import SpecError
from timonel.rollouts.gates import judge
from timonel.rollouts.plan import Gates
from timonel.rollouts.probes import ProbeSource
from timonel.rollouts.prometheus import PrometheusSource
from timonel.rollouts.sources import Endpoint, Pair, SystemClock

pytestmark = pytest.mark.slow
SCRAPE_SECONDS = 0.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _prometheus(tmp_path: Path, targets: list[str]) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "Debian's prometheus is not installed: run `make install` (apt-get install prometheus)"
        )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": f"{int(SCRAPE_SECONDS * 1000)}ms"},
                "scrape_configs": [
                    {"job_name": "queue-proxy", "static_configs": [{"targets": targets}]}
                ],
            }
        )
    )
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"prometheus did not start: {(tmp_path / 'prometheus.log').read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _scraped(url: str, revision: str) -> None:
    """Wait until Prometheus holds a sample of the revision's (zero) counters."""
    query = f'kn_serving_invocation_duration_seconds_count{{kn_revision_name="{revision}"}}'
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}).json()
        if result["data"]["result"]:
            return
        time.sleep(SCRAPE_SECONDS)
    pytest.fail(f"prometheus never scraped {revision}")


@pytest.mark.parametrize("behaviour", [GOOD, ERRORS, SLOW], ids=["good", "errors", "slow"])
def test_prometheus_reaches_the_decisions_of_the_probes(
    tmp_path: Path, behaviour: Behaviour
) -> None:
    # Knative's buckets are coarse (10, 25, 50 ms...): a slack of 50 ms keeps one request
    # delayed by a busy machine from reading as a regression; the slow canary adds 300 ms.
    gates = Gates(min_requests=10, latency_slack_ms=50.0)
    clock = SystemClock()
    with (
        Revision("m-predictor-00001") as stable,
        Revision("m-predictor-00002", behaviour) as canary,
    ):
        targets = [url.removeprefix("http://") for url in (stable.url, canary.url)]
        with _prometheus(tmp_path, targets) as prometheus:
            for revision in (stable.name, canary.name):
                _scraped(prometheus, revision)
            pair = Pair("m", Endpoint(stable.name, stable.url), Endpoint(canary.name, canary.url))
            start = clock.now()
            end = start + 4.0
            probes = ProbeSource(probe_bodies(), requests=15).gather(pair, start, end, clock)
            source = PrometheusSource(prometheus, lag=3 * SCRAPE_SECONDS)
            measured = source.gather(pair, start, end, clock)
    by_probes, by_prometheus = judge(gates, [probes]), judge(gates, [measured])
    assert by_prometheus.verdict == by_probes.verdict
    assert by_prometheus.failed_gates == by_probes.failed_gates
    assert measured.canary.requests == pytest.approx(15, abs=3)  # increase() extrapolates
    assert 'kn_revision_name="m-predictor-00002"' in measured.queries["m-predictor-00002 requests"]


def test_queries_must_cover_requests_errors_and_latency() -> None:
    with pytest.raises(SpecError, match="lack errors, latency"):
        PrometheusSource("http://127.0.0.1:9090", queries={"requests": "up"}).queries  # noqa: B018
