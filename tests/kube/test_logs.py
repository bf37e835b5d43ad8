"""``timonel logs``: which pods a model's log is read from, and how, against a scripted API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from timonel import cli
from timonel.errors import ApiError, SpecError, TimonelError
from timonel.kube.client import Cluster
from timonel.kube.logs import LogLine, logs, next_run, pods_to_read

from .fakeapi import FakeApi, Handler, Recorded, Reply, status_body
from .isvcs import isvc, with_knative_status

V1, V2 = "digits-predictor-00001", "digits-predictor-00002"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/digits"
PODS_PATH = "/api/v1/namespaces/ml/pods"

Start = Callable[[Handler], tuple[FakeApi, Cluster]]


def pod(
    revision: str | None, suffix: str = "a", *, restarts: int = 0, **status: Any
) -> dict[str, Any]:
    labels = {"serving.kserve.io/inferenceservice": "digits", "component": "predictor"}
    if revision:
        labels["serving.knative.dev/revision"] = revision
    name = f"{revision or 'digits-predictor'}-deployment-{suffix}"
    return {
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}", "labels": labels},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "kserve-container",
                    "restartCount": restarts,
                    "state": {"running": {}},
                }
            ],
            **status,
        },
    }


def canary() -> dict[str, Any]:
    """v2 at 20% beside v1."""
    return with_knative_status(
        isvc(),
        created=V2,
        ready_revision=V2,
        rolled_out=V1,
        traffic=[
            {"revisionName": V1, "percent": 80, "tag": "prev"},
            {"revisionName": V2, "percent": 20, "latestRevision": True},
        ],
    )


def failing_first() -> dict[str, Any]:
    """A first revision whose model does not load: no traffic yet."""
    return with_knative_status(
        isvc(ready=False), created=V1, ready_revision="", rolled_out=None, traffic=[]
    )


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


@pytest.mark.parametrize(
    ("service", "revision", "expected"),
    [
        (canary(), None, [f"{V1}-deployment-a", f"{V1}-deployment-b", f"{V2}-deployment-a"]),
        (canary(), V2, [f"{V2}-deployment-a"]),
        (failing_first(), None, [f"{V1}-deployment-a", f"{V1}-deployment-b"]),
        (
            isvc(mode="Standard"),
            None,
            ["digits-predictor-deployment-a", "digits-predictor-deployment-b"],
        ),
    ],
)
def test_the_pods_read_are_those_of_the_revisions_taking_traffic_or_the_one_named(
    service: dict[str, Any], revision: str | None, expected: list[str]
) -> None:
    if service["metadata"]["annotations"].get("serving.kserve.io/deploymentMode") == "Standard":
        found = [pod(None, "b"), pod(None, "a")]
    else:
        found = [pod(V2), pod(V1, "b"), pod(V1), pod("digits-predictor-00000")]
    assert names(pods_to_read(service, found, revision)) == expected


def test_standard_mode_has_no_revision_to_name() -> None:
    with pytest.raises(SpecError, match="runs in Standard mode, which has no revisions"):
        pods_to_read(isvc(mode="Standard"), [pod(None)], "digits-predictor-00001")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (None, "ended"),
        (pod(V1, restarts=1), "restarted"),
        (pod(V1, restarts=0), "wait"),
        (pod(V1, restarts=1, phase="Failed"), "ended"),
        (pod(V1, "other", restarts=1), "ended"),  # another pod of that name: the first one went
    ],
)
def test_after_a_followed_log_ends_the_pod_says_whether_to_go_on(
    now: dict[str, Any] | None, expected: str
) -> None:
    assert next_run(now, f"uid-{V1}-deployment-a", "kserve-container", 0) == expected


def test_a_container_that_had_not_started_goes_on_once_it_runs() -> None:
    uid = f"uid-{V1}-deployment-a"
    assert next_run(pod(V1), uid, "kserve-container", None) == "restarted"
    starting = pod(V1)
    starting["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    assert next_run(starting, uid, "kserve-container", None) == "wait"


def test_a_completed_storage_initializer_has_no_next_run() -> None:
    done = pod(V1)
    done["status"]["initContainerStatuses"] = [
        {"name": "storage-initializer", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}
    ]
    assert next_run(done, done["metadata"]["uid"], "storage-initializer", 0) == "ended"


def serve(
    service: dict[str, Any], pods: list[dict[str, Any]], logs_by_pod: dict[str, Any]
) -> Handler:
    """The InferenceService, its pods, and each pod's log (a str, a Reply, or a list of
    replies given in turn)."""
    served: dict[str, int] = {}

    def handler(request: Recorded) -> Reply:
        if request.path == ISVC_PATH:
            return Reply(body=service)
        if request.path == PODS_PATH:
            return Reply(body={"kind": "PodList", "items": pods})
        pod_name = request.path.removeprefix(f"{PODS_PATH}/").removesuffix("/log")
        answer = logs_by_pod[pod_name]
        if request.path.endswith("/log"):
            if isinstance(answer, list):
                served[pod_name] = served.get(pod_name, 0) + 1
                answer = answer[min(served[pod_name], len(answer)) - 1]
            return answer if isinstance(answer, Reply) else Reply(body=answer)
        return next(
            (Reply(body=p) for p in pods if p["metadata"]["name"] == pod_name),
            Reply(404, status_body(404, "NotFound", f'pods "{pod_name}" not found')),
        )

    return handler


def test_each_pod_s_log_is_read_for_the_server_container(fake_api: Start) -> None:
    pods = [pod(V1), pod(V2)]
    api, cluster = fake_api(
        serve(
            canary(),
            pods,
            {
                f"{V1}-deployment-a": "serving v1\nanswered\n",
                f"{V2}-deployment-a": "serving v2\nno newline at the end",
            },
        )
    )

    with logs("digits", cluster=cluster, tail_lines=5) as stream:
        assert stream.pods == (f"{V1}-deployment-a", f"{V2}-deployment-a")
        lines = list(stream)

    assert lines == [
        LogLine(f"{V1}-deployment-a", V1, "kserve-container", "serving v1"),
        LogLine(f"{V1}-deployment-a", V1, "kserve-container", "answered"),
        LogLine(f"{V2}-deployment-a", V2, "kserve-container", "serving v2"),
        LogLine(f"{V2}-deployment-a", V2, "kserve-container", "no newline at the end"),
    ]
    assert api.requests[1].query == {"labelSelector": "serving.kserve.io/inferenceservice=digits"}
    reads = [r for r in api.requests if r.path.endswith("/log")]
    assert [r.query for r in reads] == [{"container": "kserve-container", "tailLines": "5"}] * 2


def test_the_previous_run_of_the_storage_initializer(fake_api: Start) -> None:
    api, cluster = fake_api(serve(canary(), [pod(V2)], {f"{V2}-deployment-a": "copying\nfailed\n"}))
    texts = [
        line.text
        for line in logs(
            "digits",
            cluster=cluster,
            revision=V2,
            container="storage-initializer",
            previous=True,
        )
    ]
    assert texts == ["copying", "failed"]
    assert api.requests[-1].query == {"container": "storage-initializer", "previous": "true"}


def test_a_followed_log_goes_on_with_the_container_s_next_run_until_the_pod_ends(
    fake_api: Start,
) -> None:
    """The kubelet ends a followed log when the container ends; the pod is then looked at until
    the container runs again (its log is followed anew), or the pod is gone."""
    looks = iter([pod(V1), pod(V1, restarts=1), None])
    runs = [Reply(text=["run 1\n", "crashed\n"]), Reply(text=["run 2\n"])]
    scripted = serve(canary(), [pod(V1)], {f"{V1}-deployment-a": runs})

    def handler(request: Recorded) -> Reply:
        if request.path.endswith(f"/pods/{V1}-deployment-a"):
            now = next(looks)
            if now is None:
                return Reply(404, status_body(404, "NotFound", "gone"))
            return Reply(body=now)
        return scripted(request)

    api, cluster = fake_api(handler)
    lines = [
        line.text
        for line in logs("digits", cluster=cluster, revision=V1, follow=True, tail_lines=1)
    ]

    assert lines == ["run 1", "crashed", "run 2"]
    reads = [r.query for r in api.requests if r.path.endswith("/log")]
    assert reads == [
        {"container": "kserve-container", "follow": "true", "tailLines": "1"},
        {"container": "kserve-container", "follow": "true"},
    ]


def test_a_follow_of_a_container_still_waiting_to_start_reads_its_first_run(
    fake_api: Start,
) -> None:
    starting = pod(V1)
    starting["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    looks = iter([starting, pod(V1), None])
    waiting_to_start = Reply(
        400,
        status_body(
            400,
            "BadRequest",
            f'container "kserve-container" in pod "{V1}-deployment-a" is waiting to start: '
            "PodInitializing",
        ),
    )
    runs = [waiting_to_start, Reply(text=["loading the model\n"])]
    scripted = serve(canary(), [starting], {f"{V1}-deployment-a": runs})

    def handler(request: Recorded) -> Reply:
        if request.path.endswith(f"/pods/{V1}-deployment-a"):
            now = next(looks)
            if now is None:
                return Reply(404, status_body(404, "NotFound", "gone"))
            return Reply(body=now)
        return scripted(request)

    _, cluster = fake_api(handler)
    lines = [line.text for line in logs("digits", cluster=cluster, revision=V1, follow=True)]
    assert lines == ["loading the model"]


def test_several_followed_pods_stream_at_once_and_closing_ends_them(fake_api: Start) -> None:
    pods = [pod(V1), pod(V2)]
    quiet = Reply(text=["up\n"], hold=30.0)  # a follow that stays open, as a live server's does
    _, cluster = fake_api(
        serve(canary(), pods, {f"{V1}-deployment-a": quiet, f"{V2}-deployment-a": quiet})
    )
    stream = logs("digits", cluster=cluster, follow=True)
    lines = iter(stream)
    seen = {next(lines).pod, next(lines).pod}
    closing = threading.Thread(target=stream.close)
    closing.start()
    closing.join(timeout=10)
    assert not closing.is_alive(), "closing the stream did not end the follows"
    assert seen == {f"{V1}-deployment-a", f"{V2}-deployment-a"}


def test_no_such_inference_service(fake_api: Start) -> None:
    _, cluster = fake_api(
        lambda request: Reply(
            404,
            status_body(404, "NotFound", 'inferenceservices.serving.kserve.io "digits" not found'),
        )
    )
    with pytest.raises(ApiError, match=r"inferenceservice ml/digits was not found in namespace ml"):
        logs("digits", cluster=cluster)


def test_an_inference_service_with_no_pods_yet_says_what_to_run(fake_api: Start) -> None:
    _, cluster = fake_api(serve(failing_first(), [], {}))
    with pytest.raises(TimonelError) as raised:
        logs("digits", cluster=cluster)
    assert str(raised.value) == (
        f"inferenceservice ml/digits has no pods of revision {V1} yet: a revision gets its pods "
        "once its controller starts it, and has none while scaled to zero; run `timonel status "
        "digits` to see how it is doing, and read the logs again once it has pods"
    )


FORBIDDEN_LOG = (
    'pods "digits-predictor-00001-deployment-a" is forbidden: User '
    '"system:serviceaccount:kubeflow:pipeline-runner" cannot get resource "pods/log" in API '
    'group "" in the namespace "ml"'
)


def test_a_forbidden_log_names_the_rule_to_grant(fake_api: Start) -> None:
    def handler(request: Recorded) -> Reply:
        if request.path.endswith("/log"):
            return Reply(403, status_body(403, "Forbidden", FORBIDDEN_LOG))
        return serve(canary(), [pod(V1)], {})(request)

    _, cluster = fake_api(handler)
    with pytest.raises(ApiError) as raised:
        list(logs("digits", cluster=cluster))
    assert str(raised.value) == (
        "forbidden: user system:serviceaccount:kubeflow:pipeline-runner may not `get` pods in "
        f'namespace ml ({FORBIDDEN_LOG}); grant it a Role rule with apiGroups: [""], '
        "resources: [pods/log], verbs: [get] and bind it to the account"
    )


def test_the_command_names_each_pod_before_its_lines_when_there_are_several(
    fake_api: Start,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    api, _ = fake_api(
        serve(
            canary(),
            [pod(V1), pod(V2)],
            {f"{V1}-deployment-a": "one\n[bold]two[/bold]\n", f"{V2}-deployment-a": "three\n"},
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "config")))

    code = cli.main(["logs", "digits"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == [
        f"==> {V1}-deployment-a (revision {V1}) <==",
        "one",
        "[bold]two[/bold]",
        f"==> {V2}-deployment-a (revision {V2}) <==",
        "three",
    ]


def test_the_command_prints_one_pod_s_lines_alone(
    fake_api: Start,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    api, _ = fake_api(serve(canary(), [pod(V1), pod(V2)], {f"{V2}-deployment-a": "three\n"}))
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "config")))
    code = cli.main(["logs", "digits", "--revision", V2])
    out, err = capsys.readouterr()
    assert (code, out) == (0, "three\n"), err


def test_the_command_with_no_pods_yet_exits_as_bad_input(
    fake_api: Start,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    api, _ = fake_api(serve(failing_first(), [], {}))
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "config")))
    code = cli.main(["logs", "digits"])
    _, err = capsys.readouterr()
    assert code == cli.EXIT_USER_ERROR
    assert "run `timonel status digits`" in err
