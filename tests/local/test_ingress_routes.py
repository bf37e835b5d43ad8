"""The ingress's routing table: hosts, TF Serving paths, splits, tags, Standard canaries."""

from __future__ import annotations

import random
from typing import Any

import pytest

from timonel.errors import SpecError
from timonel.kube.records import MIRROR_PERCENT, MIRROR_REVISION
from timonel.local.ingress.routes import (
    RETENTION_PERIOD,
    Route,
    Target,
    parse_duration,
    routing_table,
)
from timonel.local.revisions import RevisionKey

R1, R2 = "half-predictor-00001", "half-predictor-00002"


def knative(name: str = "half", namespace: str = "default", **annotations: str) -> dict[str, Any]:
    """A Knative-mode InferenceService during a 30% canary, as the controller writes it."""
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"predictor": {"minReplicas": 0}},
        "status": {
            "url": f"http://{name}.{namespace}.example.com",
            "components": {
                "predictor": {
                    "traffic": [
                        {"revisionName": f"{name}-predictor-00002", "percent": 30,
                         "latestRevision": True, "tag": "latest"},
                        {"revisionName": f"{name}-predictor-00001", "percent": 70,
                         "latestRevision": False, "tag": "prev"},
                    ]
                }
            },
        },
    }  # fmt: skip


def standard(canary_ready: bool) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "half",
            "namespace": "default",
            "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
        },
        "spec": {
            "predictor": {"name": "stable"},
            "canary": [{"name": "blue", "trafficPercent": 30, "predictor": {"name": "blue"}}],
        },
        "status": {
            "canaryStatuses": [{"name": "blue", "ready": canary_ready, "trafficPercent": 30}]
        },
    }


def shares(route: Route | None) -> dict[str, int]:
    assert route is not None
    return {target.backend.revision: target.percent for target in route.targets}


def test_the_status_url_host_reaches_the_split_with_or_without_a_port() -> None:
    table = routing_table([knative()])
    for host in (
        "half.default.example.com",
        "HALF.default.example.com:8080",
        "half-predictor.default.example.com",
        "half.default.svc.cluster.local",
    ):
        assert shares(table.lookup(host, "/")) == {R2: 30, R1: 70}  # fmt: skip


def test_tag_hosts_reach_the_tagged_revision_only() -> None:
    table = routing_table([knative()])
    assert shares(table.lookup("latest-half-predictor.default.example.com", "/")) == {R2: 100}
    assert shares(table.lookup("prev-half-predictor.default.example.com", "/")) == {R1: 100}


def test_the_default_namespace_is_also_routed_by_tf_serving_path() -> None:
    table = routing_table([knative(), knative("other", "team")])
    assert shares(table.lookup("127.0.0.1:8080", "/v1/models/half:predict")) == {R2: 30, R1: 70}
    assert table.lookup("127.0.0.1:8080", "/v1/models/other:predict") is None
    assert table.lookup("other.team.example.com", "/anything") is not None


def test_an_unknown_host_or_a_service_without_traffic_has_no_route() -> None:
    empty = knative()
    empty["status"] = {}
    table = routing_table([empty])
    assert table.lookup("half.default.example.com", "/v1/models/half") is None


def test_pick_follows_the_percentages() -> None:
    route = routing_table([knative()]).lookup("half.default.example.com", "/")
    assert route is not None
    draws = random.Random(7)
    picked = [route.pick(draws.random()) for _ in range(10_000)]
    share = sum(1 for target in picked if target and target.backend.revision == R2) / 10_000
    assert 0.28 < share < 0.32
    assert route.pick(0.0) == Target(RevisionKey("default", "half", R2), 30, "latest")
    assert route.pick(0.999) == Target(RevisionKey("default", "half", R1), 70, "prev")


def test_a_route_at_zero_percent_everywhere_picks_nothing() -> None:
    route = Route("default", "x", (Target(RevisionKey("default", "x", "r"), 0),))
    assert route.pick(0.5) is None


def test_standard_mode_weights_only_ready_canaries() -> None:
    assert shares(routing_table([standard(True)]).lookup("half.default.example.com", "/")) == {
        "half-stable-predictor": 70,
        "half-blue-predictor": 30,
    }
    assert shares(routing_table([standard(False)]).lookup("half.default.example.com", "/")) == {
        "half-stable-predictor": 100
    }


def test_standard_mode_routes_kserves_raw_host_and_each_predictors_service() -> None:
    table = routing_table([standard(True)])
    assert shares(table.lookup("half-default.example.com", "/")) == {
        "half-stable-predictor": 70,
        "half-blue-predictor": 30,
    }
    assert shares(table.lookup("half-blue-predictor.default.svc.cluster.local", "/")) == {
        "half-blue-predictor": 100
    }
    assert shares(table.lookup("half-stable-predictor.default.svc", "/")) == {
        "half-stable-predictor": 100
    }


def test_the_mirror_settings_of_the_record_ride_along_with_the_route() -> None:
    record = {("default", "half"): {MIRROR_REVISION: R2, MIRROR_PERCENT: "25"}}
    route = routing_table([knative()], records=record).lookup("half.default.example.com", "/")
    assert route is not None and route.mirror is not None
    assert route.mirror.backend.revision == R2 and route.mirror.percent == 25.0
    with pytest.raises(SpecError, match="expected a number from 0 to 100"):
        routing_table(
            [knative()], records={("default", "half"): {MIRROR_REVISION: R2, MIRROR_PERCENT: "250"}}
        )


def test_mirror_annotations_on_the_inference_service_itself_mirror_nothing() -> None:
    isvc = knative(**{MIRROR_REVISION: R2, MIRROR_PERCENT: "25"})
    route = routing_table([isvc]).lookup("half.default.example.com", "/")
    assert route is not None and route.mirror is None


def test_idle_window_is_the_largest_of_default_retention_and_scale_down_delay() -> None:
    assert (
        routing_table([knative()], idle_seconds=5).hosts["half.default.example.com"].idle_seconds
        == 5
    )
    slow = knative(**{RETENTION_PERIOD: "1m30s", "autoscaling.knative.dev/scale-down-delay": "10s"})
    assert (
        routing_table([slow], idle_seconds=5).hosts["half.default.example.com"].idle_seconds == 90
    )


def test_revisions_with_min_replicas_zero_may_scale_to_zero() -> None:
    templates = {
        RevisionKey("default", "half", R1): {"minReplicas": 0},
        RevisionKey("default", "half", R2): {},
    }
    route = routing_table([knative()], templates=templates).hosts["half.default.example.com"]
    assert route.scale_to_zero == {R1}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m30s", 90), ("2h", 7200), ("0.5s", 0.5), ("0s", 0)]
)
def test_durations_read_as_go_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text, "k") == seconds


def test_a_bad_duration_says_what_to_write() -> None:
    with pytest.raises(SpecError, match="expected a duration such as 30s"):
        parse_duration("soon", "autoscaling.knative.dev/scale-down-delay")
