"""Reaching a GKE cluster by name: endpoint and CA from a stand-in GKE API, token from google-auth.

The stand-in answers ``projects.locations.clusters.get`` on 127.0.0.1 the way the GKE API does
(a ``Cluster`` resource, or a Google error body), pointing at ``timonel local``'s API server over
HTTPS, so the CA it hands out is the one that really verifies the server.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import localcluster
import pytest
from google.auth import credentials as google_credentials

from timonel.errors import ApiError, ClusterUnreachable
from timonel.kube.client import Cluster
from timonel.kube.gke_connect import cluster_access, connect_gke
from timonel.kube.requests import list_objects
from timonel.kube.resources import INFERENCE_SERVICE
from timonel.local.apiserver import certs

PROJECT = "proj"
LOCATION = "us-central1"


class IssuedTokens(google_credentials.Credentials):  # type: ignore[misc]  # untyped base
    """Credentials whose every refresh issues ``token`` for ``lifetime``, counting refreshes."""

    def __init__(self, token: str, lifetime: datetime.timedelta) -> None:
        super().__init__()
        self.issue = token
        self.lifetime = lifetime
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = self.issue
        self.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + self.lifetime


class StandInGke:
    """A GKE API on 127.0.0.1: clusters by path, or an error; remembers the requests it got."""

    def __init__(self) -> None:
        self.clusters: dict[str, dict[str, Any]] = {}
        self.error: tuple[int, str] | None = None
        self.seen: list[tuple[str, str]] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.seen.append((self.path, self.headers.get("Authorization", "")))
                found = stand_in.clusters.get(self.path)
                if stand_in.error is not None:
                    code, message = stand_in.error
                elif found is None:
                    code, message = 404, f"Not found: {self.path.removeprefix('/v1/')}."
                else:
                    self._answer(200, found)
                    return
                self._answer(code, {"error": {"code": code, "message": message}})

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name: str, record: dict[str, Any]) -> None:
        self.clusters[f"/v1/projects/{PROJECT}/locations/{LOCATION}/clusters/{name}"] = {
            "name": name,
            **record,
        }

    def connect(self, cluster: str, credentials: Any, **options: Any) -> Cluster:
        """``connect_gke`` to ``cluster`` in PROJECT and LOCATION, through this stand-in."""
        return connect_gke(
            project=PROJECT,
            location=LOCATION,
            cluster=cluster,
            credentials=credentials,
            api_base=self.url,
            **options,
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def ca_data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def gke_record(local_api: Any, **changes: Any) -> dict[str, Any]:
    """What GKE says of a running cluster whose control plane is ``local_api``."""
    record = {
        "status": "RUNNING",
        "endpoint": local_api.url.removeprefix("https://"),
        "masterAuth": {"clusterCaCertificate": ca_data(local_api.ca)},
    }
    record.update(changes)
    return record


@pytest.fixture
def gke() -> Iterator[StandInGke]:
    stand_in = StandInGke()
    yield stand_in
    stand_in.close()


@pytest.fixture
def hour_tokens() -> IssuedTokens:
    return IssuedTokens(localcluster.TOKEN, datetime.timedelta(hours=1))


def test_a_cluster_found_by_name_answers_with_the_google_token(
    gke: StandInGke, local_api: Any, hour_tokens: IssuedTokens
) -> None:
    gke.add("serving", gke_record(local_api))

    with gke.connect("serving", hour_tokens, namespace="models") as cluster:
        listed = cluster.send(list_objects(INFERENCE_SERVICE, "models"))

    assert listed["kind"] == "InferenceServiceList"
    assert cluster.namespace == "models"
    assert cluster.host == local_api.url
    assert gke.seen == [
        (
            "/v1/projects/proj/locations/us-central1/clusters/serving",
            f"Bearer {localcluster.TOKEN}",
        )
    ]
    assert hour_tokens.refreshes == 1
    assert str(cluster.target) == (
        "GKE cluster serving (project proj, location us-central1) with Google credentials"
    )


def test_a_token_about_to_expire_is_renewed_before_the_next_call(
    gke: StandInGke, local_api: Any
) -> None:
    # the kubernetes loader renews tokens within five minutes of their expiry
    short = IssuedTokens(localcluster.TOKEN, datetime.timedelta(minutes=2))
    gke.add("serving", gke_record(local_api))

    with gke.connect("serving", short) as cluster:
        before = short.refreshes
        for _ in range(2):
            cluster.send(list_objects(INFERENCE_SERVICE, "default"))
            short.token, short.expiry = None, None  # what google-auth holds once a token lapses

    assert short.refreshes == before + 2


def test_the_private_endpoint_is_used_when_asked(
    gke: StandInGke, local_api: Any, hour_tokens: IssuedTokens
) -> None:
    endpoint = local_api.url.removeprefix("https://")
    gke.add(
        "private",
        gke_record(
            local_api, endpoint="203.0.113.7", privateClusterConfig={"privateEndpoint": endpoint}
        ),
    )

    with gke.connect("private", hour_tokens, private_endpoint=True) as cluster:
        assert cluster.send(list_objects(INFERENCE_SERVICE, "default"))["items"] == []


def test_a_cluster_signed_by_another_ca_is_not_trusted(
    gke: StandInGke, local_api: Any, hour_tokens: IssuedTokens, tmp_path: Path
) -> None:
    other_ca = certs.ensure(tmp_path / "other").ca
    gke.add(
        "serving",
        gke_record(local_api, masterAuth={"clusterCaCertificate": ca_data(other_ca)}),
    )

    with (
        gke.connect("serving", hour_tokens) as cluster,
        pytest.raises(ClusterUnreachable) as raised,
    ):
        cluster.send(list_objects(INFERENCE_SERVICE, "default"))

    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert "GKE cluster serving" in str(raised.value)


def test_an_unknown_cluster_says_how_to_list_them(
    gke: StandInGke, hour_tokens: IssuedTokens
) -> None:
    with pytest.raises(ApiError) as raised:
        gke.connect("missing", hour_tokens)

    assert raised.value.status.code == 404
    assert "`gcloud container clusters list --project proj`" in str(raised.value)


def test_a_forbidden_account_is_told_which_role_to_grant(
    gke: StandInGke, hour_tokens: IssuedTokens
) -> None:
    gke.error = (403, "Required 'container.clusters.get' permission for 'projects/proj'.")

    with pytest.raises(ApiError) as raised:
        gke.connect("serving", hour_tokens)

    assert raised.value.status.code == 403
    assert "roles/container.clusterViewer on project proj" in str(raised.value)
    assert "container.clusters.get" in str(raised.value)


def test_no_google_credentials_says_how_to_log_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a key file that is not there fails at once, before google-auth would ask a metadata server
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))

    with pytest.raises(ApiError) as raised:
        connect_gke(project="proj", location="us-central1", cluster="serving")

    assert raised.value.status.code == 401
    assert "`gcloud auth application-default login`" in str(raised.value)


def test_an_unreachable_gke_api_is_reported_as_such(hour_tokens: IssuedTokens) -> None:
    stand_in = StandInGke()
    stand_in.close()  # the port is now closed

    with pytest.raises(ClusterUnreachable) as raised:
        stand_in.connect("serving", hour_tokens)

    assert f"cannot reach the GKE API at {stand_in.url}" in str(raised.value)


CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n...").decode()


@pytest.mark.parametrize(
    ("record", "private", "said"),
    [
        ({"status": "PROVISIONING", "endpoint": "1.2.3.4"}, False, "is PROVISIONING"),
        ({"status": "ERROR"}, False, "is ERROR"),
        ({"status": "RUNNING", "masterAuth": {"clusterCaCertificate": CA}}, False, "no endpoint"),
        (
            {
                "status": "RUNNING",
                "endpoint": "1.2.3.4",
                "masterAuth": {"clusterCaCertificate": CA},
            },
            True,
            "no privateClusterConfig.privateEndpoint",
        ),
        ({"status": "RUNNING", "endpoint": "1.2.3.4"}, False, "no masterAuth.clusterCaCertificate"),
        (
            {
                "status": "RUNNING",
                "endpoint": "1.2.3.4",
                "masterAuth": {"clusterCaCertificate": "*"},
            },
            False,
            "is not base64",
        ),
    ],
)
def test_records_without_a_reachable_control_plane_are_refused(
    record: dict[str, Any], private: bool, said: str
) -> None:
    with pytest.raises(ClusterUnreachable, match=said):
        cluster_access({"name": "c", **record}, private_endpoint=private)


@pytest.mark.parametrize("state", ["RUNNING", "RECONCILING", "DEGRADED"])
def test_a_serving_control_plane_is_reached_over_https(state: str) -> None:
    record = {"status": state, "endpoint": "34.1.2.3", "masterAuth": {"clusterCaCertificate": CA}}

    access = cluster_access(record)

    assert (access.server, access.ca_data) == ("https://34.1.2.3", CA)
