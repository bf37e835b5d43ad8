"""The edge: which kubeconfig, what is sent, and how API errors read."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from timonel.errors import ApiError, ClusterUnreachable
from timonel.kube.client import Cluster, Target, resolve_target
from timonel.kube.requests import (
    apply_object,
    create_object,
    get_object,
    list_objects,
    merge_patch,
)
from timonel.kube.resources import INFERENCE_SERVICE

from .fakeapi import Reply, status_body
from .isvcs import isvc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_an_explicit_kubeconfig_wins(home: Path) -> None:
    env = {"KUBECONFIG": "/env/config"}
    assert resolve_target(kubeconfig="/mine", context="c", env=env, home=home) == Target(
        "/mine", "c"
    )


def test_kubeconfig_env_then_home(home: Path) -> None:
    assert resolve_target(env={"KUBECONFIG": "/a:/b"}, home=home) == Target("/a:/b", None)
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text("{}")
    assert resolve_target(env={}, home=home) == Target(str(home / ".kube" / "config"), None)


def test_in_a_pod_the_service_account_is_used(home: Path, tmp_path: Path) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("t")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert resolve_target(env=env, home=home, account_dir=account).in_cluster
    assert (
        str(Target(None, None, in_cluster=True)) == "the pod's service account (in-cluster config)"
    )


def test_connect_in_a_pod_reads_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----")
    (account / "namespace").write_text("kubeflow-user\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(home))
    cluster = Cluster.connect(account_dir=account)
    assert cluster.target.in_cluster
    assert cluster.namespace == "kubeflow-user"
    assert cluster.host == "https://10.0.0.1:443"
    assert cluster.api_client.configuration.api_key["authorization"] == "bearer pod-token"


def test_connect_takes_the_context_namespace_and_sends_the_token(fake_api) -> None:
    api, cluster = fake_api(lambda r: Reply(body=isvc()))
    assert cluster.namespace == "ml"
    assert cluster.target.context == "fake"
    assert (
        cluster.send(get_object(INFERENCE_SERVICE, "ml", "digits"))["metadata"]["name"] == "digits"
    )
    sent = api.requests[0]
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert sent.path == "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/digits"


def test_patch_content_types_and_null_fields_reach_the_server(fake_api) -> None:
    api, cluster = fake_api(lambda r: Reply(body=isvc()))
    patch = {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    cluster.send(merge_patch(INFERENCE_SERVICE, "ml", "digits", patch))
    manifest = isvc()
    del manifest["status"]
    cluster.send(apply_object(manifest, dry_run=True))
    merge, apply = api.requests
    assert merge.headers["content-type"] == "application/merge-patch+json"
    assert merge.body == patch
    assert merge.query == {"fieldManager": "timonel"}
    assert apply.headers["content-type"] == "application/apply-patch+yaml"
    assert apply.query == {"fieldManager": "timonel", "dryRun": "All", "force": "true"}
    assert apply.body == manifest


def test_a_missing_context_says_how_to_list_them(tmp_path: Path, fake_api) -> None:
    api, _ = fake_api(lambda r: Reply())
    path = api.write_kubeconfig(tmp_path / "kc")
    with pytest.raises(ClusterUnreachable) as caught:
        Cluster.connect(kubeconfig=path, context="prod")
    assert str(caught.value).startswith(
        f"cannot load the Kubernetes configuration from context prod in {path}: "
    )
    assert str(caught.value).endswith(
        "pick an existing context with --context (`kubectl config get-contexts` lists them), or "
        "run `timonel local up` for a local cluster"
    )
    assert caught.value.context == "prod"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "does not exist"),
        ("clusters: [unclosed\n", "is not YAML"),
        ("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n", "is empty"),
    ],
)
def test_a_kubeconfig_that_cannot_be_loaded_is_unreachable_naming_it(
    tmp_path: Path, content: str | None, why: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ClusterUnreachable) as caught:
        Cluster.connect(kubeconfig=path, context="staging")
    text = str(caught.value)
    assert text.startswith(
        f"cannot load the Kubernetes configuration from context staging in {path}: "
    ), why
    assert "\n" not in text
    assert text.endswith("or run `timonel local up` for a local cluster")


FORBIDDEN = (
    'inferenceservices.serving.kserve.io "digits" is forbidden: User '
    '"system:serviceaccount:kubeflow:pipeline-runner" cannot patch resource "inferenceservices" '
    'in API group "serving.kserve.io" in the namespace "ml"'
)
#: A first deploy: the server-side apply passed as `patch`, then the object had to be created.
FORBIDDEN_CREATE = FORBIDDEN.replace("cannot patch", "cannot create")


@pytest.mark.parametrize(
    ("code", "body", "request_", "message"),
    [
        (
            401,
            status_body(401, "Unauthorized", "Unauthorized"),
            get_object(INFERENCE_SERVICE, "ml", "digits"),
            "the Kubernetes API at {host} refused the credentials of context fake in {kc} (401 "
            "Unauthorized: Unauthorized); refresh the token in that kubeconfig (for the local "
            "cluster, `timonel local up` writes a fresh one)",
        ),
        (
            403,
            status_body(403, "Forbidden", FORBIDDEN, name="digits", kind="inferenceservices"),
            merge_patch(INFERENCE_SERVICE, "ml", "digits", {}),
            "forbidden: user system:serviceaccount:kubeflow:pipeline-runner may not `patch` "
            f"inferenceservices.serving.kserve.io in namespace ml ({FORBIDDEN}); grant it a Role "
            "rule with apiGroups: [serving.kserve.io], resources: [inferenceservices], "
            "verbs: [patch] and bind it to the account",
        ),
        (
            403,
            status_body(403, "Forbidden", FORBIDDEN_CREATE, name="digits"),
            apply_object(isvc()),
            "forbidden: user system:serviceaccount:kubeflow:pipeline-runner may not `create` "
            f"inferenceservices.serving.kserve.io in namespace ml ({FORBIDDEN_CREATE}); grant it "
            "a Role rule with apiGroups: [serving.kserve.io], resources: [inferenceservices], "
            "verbs: [patch, create] and bind it to the account",
        ),
        (
            403,
            status_body(403, "Forbidden", "watch is forbidden"),
            list_objects(INFERENCE_SERVICE, "ml"),
            "forbidden: this account may not `list` inferenceservices.serving.kserve.io in "
            "namespace ml (watch is forbidden); grant it a Role rule with apiGroups: "
            "[serving.kserve.io], resources: [inferenceservices], verbs: [list] and bind it to "
            "the account",
        ),
        (
            404,
            status_body(404, "NotFound", 'inferenceservices.serving.kserve.io "digits" not found'),
            get_object(INFERENCE_SERVICE, "ml", "digits"),
            "inferenceservice ml/digits was not found in namespace ml "
            '(inferenceservices.serving.kserve.io "digits" not found); check the name and the '
            "namespace (`timonel list` shows what is deployed)",
        ),
        (
            404,
            "404 page not found",
            get_object(INFERENCE_SERVICE, "ml", "digits"),
            "the server at {host} does not serve serving.kserve.io/v1beta1 inferenceservices "
            "(404 page not found); install KServe on the cluster, or pick another context with "
            "--context",
        ),
        (
            409,
            status_body(409, "Conflict", "the object has been modified"),
            merge_patch(INFERENCE_SERVICE, "ml", "digits", {}),
            "inferenceservice ml/digits changed while Timonel was writing it (409 Conflict: the "
            "object has been modified); run the command again",
        ),
        (
            422,
            status_body(
                422,
                "Invalid",
                'InferenceService.serving.kserve.io "digits" is invalid',
                causes=[
                    {"field": "spec.predictor.minReplicas", "message": "must be >= 0"},
                    {"field": "metadata.name", "message": "must be lower case"},
                ],
            ),
            merge_patch(INFERENCE_SERVICE, "ml", "digits", {}),
            "the API server rejected inferenceservice ml/digits as invalid: "
            "spec.predictor.minReplicas: must be >= 0; metadata.name: must be lower case; fix "
            "the spec and try again",
        ),
        (
            400,
            status_body(
                400,
                "BadRequest",
                'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
                "request: canary is only supported in Standard deployment mode",
            ),
            merge_patch(INFERENCE_SERVICE, "ml", "digits", {}),
            "KServe refused to patch inferenceservice ml/digits: admission webhook "
            '"inferenceservice.kserve-webhook-server.validator" denied the request: canary is '
            "only supported in Standard deployment mode; fix the spec (`timonel render` checks "
            "the same rules before deploying) and try again",
        ),
        (
            403,
            status_body(
                403,
                "Forbidden",
                'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
                "request: 'MinReplicas' cannot be less than 0",
            ),
            create_object(isvc()),
            "KServe refused to create inferenceservice ml/digits: admission webhook "
            '"inferenceservice.kserve-webhook-server.validator" denied the request: '
            "'MinReplicas' cannot be less than 0; fix the spec (`timonel render` checks the same "
            "rules before deploying) and try again",
        ),
        (
            500,
            status_body(500, "InternalError", "etcd is unavailable"),
            get_object(INFERENCE_SERVICE, "ml", "digits"),
            "the Kubernetes API refused to get inferenceservice ml/digits (500 InternalError: "
            "etcd is unavailable); the server failed, not the request: try again, and check the "
            "cluster's health if it persists",
        ),
        (
            400,
            status_body(400, "BadRequest", "the body of the request was in an unknown format"),
            merge_patch(INFERENCE_SERVICE, "ml", "digits", {}),
            "the Kubernetes API refused to patch inferenceservice ml/digits (400 BadRequest: the "
            "body of the request was in an unknown format); fix what it names and try again",
        ),
    ],
)
def test_errors_say_what_to_do(fake_api, tmp_path: Path, code, body, request_, message) -> None:
    api, cluster = fake_api(lambda r: Reply(code, body))
    with pytest.raises(ApiError) as caught:
        cluster.send(request_)
    kc = tmp_path / "kubeconfig"
    assert str(caught.value) == message.format(host=api.url, kc=kc)
    assert caught.value.status.code == code


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("server", "failure"),
    [
        ("http://127.0.0.1:{closed}", "refused"),
        ("http://no-such-host.invalid:6443", "DNS"),
        ("https://{fake_host}", "TLS to a plain-HTTP server"),
    ],
)
def test_an_unreachable_server_names_the_context_the_address_and_what_to_try(
    tmp_path: Path, fake_api, server: str, failure: str
) -> None:
    api, _ = fake_api(lambda r: Reply())
    address = server.format(closed=closed_port(), fake_host=api.url.removeprefix("http://"))
    path = api.write_kubeconfig(tmp_path / "kc")
    path.write_text(path.read_text().replace(api.url, address))
    with Cluster.connect(kubeconfig=path) as cluster, pytest.raises(ClusterUnreachable) as caught:
        cluster.send(get_object(INFERENCE_SERVICE, "ml", "digits"), timeout=5)
    text = str(caught.value)
    assert text.startswith(
        f"cannot reach the Kubernetes API at {address} (context fake in {path}) "
        "to get inferenceservice ml/digits: "
    ), failure
    assert "\n" not in text
    assert text.endswith(
        "check that the cluster is running (`timonel local up` for the local one), that its "
        "certificate is the one in the kubeconfig, or pick another context with --context "
        "(`kubectl config get-contexts` lists them, `kubectl config use-context` sets the "
        "default)"
    )
    assert (caught.value.context, caught.value.server) == ("fake", address)


def test_with_no_kubeconfig_the_local_cluster_is_used(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMONEL_LOCAL_HOME", str(tmp_path / "local"))
    local = tmp_path / "local" / "kubeconfig"
    with pytest.raises(ClusterUnreachable) as caught:
        resolve_target(env={}, home=home)
    assert str(caught.value) == (
        "no Kubernetes configuration found: no --kubeconfig, no $KUBECONFIG, no "
        f"{home / '.kube' / 'config'}, not in a pod, and no local cluster ({local}); point "
        "KUBECONFIG at a cluster's kubeconfig, or run `timonel local up` for a local cluster"
    )
    local.parent.mkdir()
    local.write_text("{}")
    assert resolve_target(env={}, home=home, context="timonel-local") == Target(
        str(local), "timonel-local"
    )
