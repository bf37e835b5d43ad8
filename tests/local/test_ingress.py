"""The ``timonel local`` ingress in front of the controller: splits, tags, mirroring, scale to zero.

Revisions run the stand-in server, which answers ``{"predictions": [<model version>]}``, so each
answer says which revision served it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from kubernetes import client

import timonel
from timonel import cli
from timonel.kube.client import Cluster
from timonel.kube.records import MIRROR_PERCENT, MIRROR_REVISION, record_manifest, record_name
from timonel.local.controller import Controller
from timonel.local.ingress.mirror import MirrorCount
from timonel.local.ingress.router import Ingress, RunningIngress, running
from timonel.local.revisions import RevisionKey

from .kubeapi import GROUP, PLURAL, VERSION
from .test_controller import (
    NAMESPACE,
    canary_change,
    manifest,
    ready_at,
    repo,  # noqa: F401  # the fixture
    settled,
    update,
    wait_for,
)

IDLE_SECONDS = 1.5


@pytest.fixture(scope="module")
def api(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="module")
def ingress(local_controller: Controller) -> Iterator[RunningIngress]:
    router = Ingress(local_controller, idle_seconds=IDLE_SECONDS, timeout=20.0)
    local_controller.listen(router.update, drain=router.activator.drain)
    with running(router) as served:
        yield served


def ready(isvc: dict[str, object]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (isvc.get("status") or {}).get("conditions") or []  # type: ignore[union-attr]
    )


def deploy(api: client.CustomObjectsApi, name: str, uri: str, **predictor: object) -> None:
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, uri, **predictor)
    )
    wait_for(api, name, settled)


def predict(http: httpx.Client, name: str, host: str | None = None) -> int:
    reply = http.post(
        f"/v1/models/{name}:predict",
        json={"instances": [1.0]},
        headers={"Host": host or f"{name}.{NAMESPACE}.example.com"},
    )
    assert reply.status_code == 200, reply.text
    return int(reply.json()["predictions"][0])


def versions_within(http: httpx.Client, name: str, expected: int, seconds: float = 1.0) -> None:
    """Every answer comes from ``expected`` within ``seconds`` (and stays so for 20 requests)."""
    deadline = time.monotonic() + seconds
    while any(predict(http, name) != expected for _ in range(20)):
        assert time.monotonic() < deadline, f"{name} still answers other versions than {expected}"


def binomial_bounds(n: int, p: float, sigmas: float = 4.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def test_canary_split_tags_promote_and_rollback(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    repo: Path,  # noqa: F811
) -> None:
    name = "split"
    deploy(api, name, str(repo / "half" / "v1"))
    update(api, name, canary_change(str(repo / "half" / "v2"), 30))
    wait_for(api, name, ready_at(f"{name}-predictor-00002"))
    with httpx.Client(base_url=ingress.url, timeout=10) as http:
        counts = Counter(predict(http, name) for _ in range(400))
        low, high = binomial_bounds(400, 0.3)
        assert low <= counts[2] <= high and counts[1] + counts[2] == 400, counts
        # The tag Knative always sets on a split reaches the previous revision only.
        assert {
            predict(http, name, f"prev-{name}-predictor.default.example.com") for _ in range(30)
        } == {1}
        # The TF Serving path routes the default namespace without the Host.
        by_path = Counter(
            http.post(f"/v1/models/{name}:predict", json={"instances": [1]}).json()["predictions"][
                0
            ]
            for _ in range(50)
        )
        assert set(by_path) == {1, 2}
        update(api, name, lambda i: i["spec"]["predictor"].update(canaryTrafficPercent=0))
        versions_within(http, name, 1)
        update(api, name, lambda i: i["spec"]["predictor"].pop("canaryTrafficPercent"))
        versions_within(http, name, 2)
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_latest_tag_route_when_tag_routing_is_on(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    repo: Path,  # noqa: F811
) -> None:
    name = "tagged"
    body = manifest(name, str(repo / "half" / "v1"))
    body["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] = "true"
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    wait_for(api, name, ready)
    update(api, name, canary_change(str(repo / "half" / "v2"), 10))
    wait_for(api, name, ready_at(f"{name}-predictor-00002"))
    with httpx.Client(base_url=ingress.url, timeout=10) as http:
        latest = f"latest-{name}-predictor.default.example.com"
        assert {predict(http, name, latest) for _ in range(30)} == {2}
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def shadowing(api: client.CustomObjectsApi, name: str, repo: Path) -> None:  # noqa: F811
    """``name`` serving v1, with v2 at 0% and ready: a candidate to mirror to."""
    deploy(api, name, str(repo / "half" / "v1"))
    update(api, name, canary_change(str(repo / "half" / "v2"), 0))
    wait_for(api, name, ready_at(f"{name}-predictor-00002"))


def mirrored(ingress: RunningIngress, name: str, requests: int) -> MirrorCount:
    """The ingress's mirror count for ``name`` once it has counted ``requests``."""
    deadline = time.monotonic() + 5
    while True:
        counts = [c for c in ingress.ingress.mirrors.snapshot() if c.isvc == name]
        if counts and counts[0].requests == requests:
            return counts[0]
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)


def test_mirrored_answers_are_compared_never_returned(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    repo: Path,  # noqa: F811
) -> None:
    name = "mirrored"
    shadowing(api, name, repo)
    headers = {
        "Host": f"{name}.default.example.com",
        "Timonel-Mirror-Revision": f"{name}-predictor-00002",
    }
    with httpx.Client(base_url=ingress.url, timeout=10) as http:
        answers = {
            http.post(
                f"/v1/models/{name}:predict", json={"instances": [1]}, headers=headers
            ).json()["predictions"][0]
            for _ in range(40)
        }
        assert answers == {1}
        count = mirrored(ingress, name, 40)
        assert count.mirror == f"{name}-predictor-00002"
        assert count.differences == 40 and count.errors == 0
        assert http.get("/mirror").json()[0]["differences"] >= 40
        metrics = http.get("/metrics").text
        assert 'timonel_mirror_differences_total{isvc="mirrored"' in metrics
        assert f'kn_revision_name="{name}-predictor-00001"' in metrics
        assert "kn_serving_invocation_duration_seconds_bucket" in metrics
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_the_records_mirror_settings_mirror_every_request_until_the_record_goes(
    api: client.CustomObjectsApi,
    kube_client: client.ApiClient,
    ingress: RunningIngress,
    repo: Path,  # noqa: F811
) -> None:
    name = "recorded"
    shadowing(api, name, repo)
    isvc = api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    core = client.CoreV1Api(kube_client)
    settings = {MIRROR_REVISION: f"{name}-predictor-00002", MIRROR_PERCENT: "100"}
    core.create_namespaced_config_map(NAMESPACE, record_manifest(isvc, settings))

    def mirror_to() -> str | None:
        route = ingress.ingress.table.lookup(f"{name}.default.example.com", "/")
        return None if route is None or route.mirror is None else route.mirror.backend.revision

    deadline = time.monotonic() + 10
    while mirror_to() is None:
        assert time.monotonic() < deadline, "the ingress never read the record"
        time.sleep(0.05)
    assert mirror_to() == f"{name}-predictor-00002"
    with httpx.Client(base_url=ingress.url, timeout=10) as http:
        host = f"{name}.default.example.com"
        assert {predict(http, name, host) for _ in range(20)} == {1}
    assert mirrored(ingress, name, 20).mirror == f"{name}-predictor-00002"
    core.delete_namespaced_config_map(record_name(name), NAMESPACE)
    deadline = time.monotonic() + 10
    while mirror_to() is not None:
        assert time.monotonic() < deadline, "the ingress kept mirroring after the record went"
        time.sleep(0.05)
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_scale_to_zero_and_back_with_20_concurrent_requests(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    local_controller: Controller,
    repo: Path,  # noqa: F811
) -> None:
    name = "sleepy"
    revision = RevisionKey(NAMESPACE, name, f"{name}-predictor-00001")
    deploy(api, name, str(repo / "half" / "v1"), minReplicas=0)
    deadline = time.monotonic() + 20
    while local_controller.revision_pid(NAMESPACE, name, revision.revision) is not None:
        assert time.monotonic() < deadline, "the idle revision was not scaled to zero"
        time.sleep(0.1)
    isvc = wait_for(api, name, lambda i: "totalCopies" not in i["status"]["modelStatus"]["copies"])
    assert ready(isvc)
    with (
        httpx.Client(
            base_url=ingress.url, timeout=30, limits=httpx.Limits(max_connections=20)
        ) as http,
        ThreadPoolExecutor(20) as pool,
    ):
        answers = list(pool.map(lambda _: predict(http, name), range(20)))
    assert answers == [1] * 20
    assert local_controller.revision_pid(NAMESPACE, name, revision.revision) is not None
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_a_revision_that_cannot_start_answers_503_with_its_error(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    local_controller: Controller,
    repo: Path,  # noqa: F811
) -> None:
    name = "broken"
    revision = f"{name}-predictor-00001"
    folder = repo / "half" / "breaks"
    folder.mkdir()
    (folder / "1").mkdir()
    (folder / "1" / "saved_model.pb").write_bytes(b"graph")
    deploy(api, name, str(folder), minReplicas=0)
    deadline = time.monotonic() + 20
    while local_controller.revision_pid(NAMESPACE, name, revision) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The model copy the revision serves from goes bad while it is at zero.
    store = next(
        Path(p) for p in [local_controller._store.model_dir(RevisionKey(NAMESPACE, name, revision))]
    )
    (store / "1" / "saved_model.pb").write_bytes(b"corrupt graph")
    with httpx.Client(base_url=ingress.url, timeout=30) as http:
        reply = http.post(
            f"/v1/models/{name}:predict",
            json={"instances": [1]},
            headers={"Host": f"{name}.default.example.com"},
        )
    assert reply.status_code == 503
    assert f"revision default/{revision} cannot start" in reply.text and "bad graph" in reply.text
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_a_revision_killed_under_load_recovers(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    local_controller: Controller,
    repo: Path,  # noqa: F811
) -> None:
    name = "killed"
    revision = f"{name}-predictor-00001"
    deploy(api, name, str(repo / "half" / "v1"))
    codes: Counter[int] = Counter()
    with httpx.Client(base_url=ingress.url, timeout=30) as http:
        for index in range(200):
            if index == 50:
                pid = local_controller.revision_pid(NAMESPACE, name, revision)
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            reply = http.post(
                f"/v1/models/{name}:predict",
                json={"instances": [1]},
                headers={"Host": f"{name}.default.example.com"},
            )
            codes[reply.status_code] += 1
        assert predict(http, name) == 1
    assert codes[200] >= 195, codes
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_an_unknown_host_gets_404_naming_the_hosts_that_work(ingress: RunningIngress) -> None:
    reply = httpx.get(
        f"{ingress.url}/v1/models/nothing", headers={"Host": "nothing.default.example.com"}
    )
    assert reply.status_code == 404
    assert "no InferenceService answers Host 'nothing.default.example.com'" in reply.text


def test_client_for_service_and_timonel_predict_find_the_service_from_its_status(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    local_kubeconfig: Path,
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "found"
    deploy(api, name, str(repo / "half" / "v1"))
    with (
        Cluster.connect(kubeconfig=local_kubeconfig) as cluster,
        timonel.Client.for_service(name, cluster=cluster, gateway=ingress.url) as found,
    ):
        assert found.predict_json(name, {"instances": [1.0]}) == {"predictions": [1]}
    monkeypatch.setenv("KUBECONFIG", str(local_kubeconfig))
    body = '{"instances": [1.0]}'
    code = cli.main(["predict", name, "--gateway", ingress.url, "--json", body])
    assert (code, json.loads(capsys.readouterr().out)) == (0, {"predictions": [1]})
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_kserve_clients_flows_through_the_ingress(
    api: client.CustomObjectsApi,
    ingress: RunningIngress,
    local_kubeconfig: Path,
    repo: Path,  # noqa: F811
) -> None:
    """KServeClient deploys, its merge patches split and promote; KServe's InferenceRESTClient
    predicts through the ingress by Host."""
    import asyncio

    from kserve import InferenceRESTClient, KServeClient, RESTConfig

    from .test_api_kserve import isvc_model

    name = "kserved"
    saved = client.Configuration._default
    try:
        kserve = KServeClient(config_file=str(local_kubeconfig))
        kserve.create(isvc_model(name, str(repo / "half" / "v1")))
        kserve.wait_isvc_ready(name, "default", timeout_seconds=60, polling_interval=1)
        v2 = str(repo / "half" / "v2")
        patch = {"spec": {"predictor": {"model": {"storageUri": v2}, "canaryTrafficPercent": 30}}}
        kserve.api_instance.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, patch
        )
        wait_for(api, name, ready_at(f"{name}-predictor-00002"))

        async def versions(count: int) -> Counter[int]:
            rest = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
            host = {"Host": f"{name}.{NAMESPACE}.example.com"}
            answers: Counter[int] = Counter()
            for _ in range(count):
                reply = await rest.infer(ingress.url, {"instances": [1.0]}, name, headers=host)
                answers[int(reply["predictions"][0])] += 1
            await rest.close()
            return answers

        counts = asyncio.run(versions(200))
        low, high = binomial_bounds(200, 0.3)
        assert low <= counts[2] <= high and counts[1] + counts[2] == 200, counts

        promote = {"spec": {"predictor": {"canaryTrafficPercent": None}}}
        kserve.api_instance.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, promote
        )
        wait_for(
            api,
            name,
            lambda i: (
                [t["percent"] for t in i["status"]["components"]["predictor"]["traffic"]] == [100]
            ),
        )
        assert asyncio.run(versions(30)) == Counter({2: 30})
        kserve.delete(name, "default")
    finally:
        client.Configuration.set_default(saved)


def test_a_grpc_call_for_an_unknown_host_ends_unimplemented(ingress: RunningIngress) -> None:
    import grpc

    options = [("grpc.default_authority", "nothing.default.example.com")]
    with grpc.insecure_channel(f"127.0.0.1:{ingress.port}", options=options) as channel:
        call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
        with pytest.raises(grpc.RpcError) as failed:
            call(b"", timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert (
        failed.value.details() == "no InferenceService answers host 'nothing.default.example.com'"
    )
