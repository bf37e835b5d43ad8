"""The Prometheus source against a real Prometheus (Debian's ``prometheus``) on 127.0.0.1,
scraping ``timonel local``'s ingress (its queue-proxy metrics at ``GET /metrics``) while probes
go through the ingress's tag routes to a real canary split: it reaches the probes' decisions."""

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
from local.standin_server import ERRORS, GOOD, Behaviour

from rollouts.fakeclock import FakeClock
from rollouts.localrollouts import LocalCluster
from rollouts.toyrevisions import probe_bodies
from timonel import cli
from timonel.errors import EvidenceUnreachable, SpecError
from timonel.kube.rollout import canary
from timonel.rollouts.driver import pair_of
from timonel.rollouts.gates import judge
from timonel.rollouts.plan import Gates
from timonel.rollouts.probes import ProbeSource
from timonel.rollouts.prometheus import PrometheusSource
from timonel.rollouts.sources import Endpoint, Pair, SystemClock

pytestmark = pytest.mark.slow
SCRAPE_SECONDS = 0.5
#: Slower than a busy machine's worst single request (see ``test_local_rollouts``).
SLOW = Behaviour(delay=1.0)


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
                    {"job_name": "timonel-ingress", "static_configs": [{"targets": targets}]}
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
    """Wait until Prometheus holds a sample of the revision's request counter."""
    query = f'kn_serving_invocation_duration_seconds_count{{kn_revision_name="{revision}"}}'
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}).json()
        if result["data"]["result"]:
            return
        time.sleep(SCRAPE_SECONDS)
    pytest.fail(f"prometheus never scraped {revision}")


def split(cluster: LocalCluster, name: str, candidate: Behaviour) -> Pair:
    """``name`` serving a good v1 with v2 (``candidate``) at 50%, each reachable by tag."""
    cluster.deploy(name, cluster.release(name, 1, GOOD))
    release = cluster.release(name, 2, candidate)
    canary(name, release, 50, tag_routing=True, cluster=cluster.api, timeout=60)
    return pair_of(cluster.read(name), cluster.gateway)


@pytest.mark.parametrize("behaviour", [GOOD, ERRORS, SLOW], ids=["good", "errors", "slow"])
def test_prometheus_reaches_the_decisions_of_the_probes(
    toy_cluster: LocalCluster, tmp_path: Path, behaviour: Behaviour, request: pytest.FixtureRequest
) -> None:
    # Knative's buckets are coarse (10, 25, 50 ms...), and a busy machine delays single
    # requests: the slack keeps either from reading as a regression.
    gates = Gates(min_requests=10, latency_slack_ms=600.0)
    clock = SystemClock()
    name = f"scraped-{request.node.callspec.id}"
    pair = split(toy_cluster, name, behaviour)
    target = toy_cluster.gateway.removeprefix("http://")
    with _prometheus(tmp_path, [target]) as prometheus:
        # queue-proxy makes a revision's series at its first request, as the ingress does:
        # one request each before the window, so increase() sees the window's requests whole
        # (a status code's series, as the first 500's, still starts within it: a little less).
        ProbeSource(probe_bodies(1), requests=1).gather(pair, 0, 0, clock)
        for revision in (pair.stable.revision, pair.canary.revision):
            _scraped(prometheus, revision)
        start = clock.now()
        end = start + 4.0
        probes = ProbeSource(probe_bodies(), requests=15).gather(pair, start, end, clock)
        source = PrometheusSource(prometheus, lag=3 * SCRAPE_SECONDS)
        measured = source.gather(pair, start, end, clock)
    by_probes, by_prometheus = judge(gates, [probes]), judge(gates, [measured])
    assert by_prometheus.verdict == by_probes.verdict, (by_probes.reason, by_prometheus.reason)
    assert by_prometheus.failed_gates == by_probes.failed_gates
    assert measured.canary.requests == pytest.approx(15, abs=3)  # increase() extrapolates
    query = measured.queries[f"{pair.canary.revision} requests"]
    assert f'kn_revision_name="{pair.canary.revision}"' in query


def test_queries_must_cover_requests_errors_and_latency() -> None:
    with pytest.raises(SpecError, match="lack errors, latency"):
        PrometheusSource("http://127.0.0.1:9090", queries={"requests": "up"}).queries  # noqa: B018


def test_an_unreachable_prometheus_is_a_refusal(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    source = PrometheusSource("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    pair = Pair(
        "m",
        Endpoint("m-predictor-00001", "http://127.0.0.1:8080"),
        Endpoint("m-predictor-00002", "http://127.0.0.1:8080"),
        "default",
    )
    with pytest.raises(
        EvidenceUnreachable, match=r"cannot query Prometheus at http://127\.0\.0\.1:9"
    ):
        source.gather(pair, clock.now(), clock.now() + 1, clock)
    assert cli.exit_code(EvidenceUnreachable("")) == cli.EXIT_REFUSED
