"""The edge between Timonel and the Kubernetes API, over the ``kubernetes`` client.

``Cluster`` sends the plain ``Request`` values of ``timonel.kube.requests`` through the
``kubernetes`` client's ``ApiClient`` (which owns kubeconfig auth, exec plugins, TLS and token
refresh) and turns every answer that is an error into ``ApiError`` carrying the server's ``Status``,
with a message that says what to do: a 403 names the RBAC verb and resource that are missing, a 401
points at the credentials. When no server answers at all (a kubeconfig that cannot be loaded, a
refused connection, a DNS or TLS failure, a connection cut mid-watch) there is no ``Status``:
that is ``ClusterUnreachable``, naming the context and the server, made in one place
(``unreachable``).

Which cluster: an explicit kubeconfig or ``--context``; else ``$KUBECONFIG``; else
``~/.kube/config``; else the pod's service account (in-cluster, as in a Kubeflow pipeline step);
else the kubeconfig ``timonel local up`` writes (``timonel.local.kubeconfig_path()``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.errors import ApiError, ClusterUnreachable, Status
from timonel.kube.requests import Request

#: Where Kubernetes mounts a pod's service account (token, CA and namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

#: Seconds to open a connection; reads get their own deadline per call.
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Target:
    """Where the kubeconfig came from, for messages (``context timonel-local in ~/.kube/...``)."""

    kubeconfig: str | None
    context: str | None
    in_cluster: bool = False

    def __str__(self) -> str:
        if self.in_cluster:
            return "the pod's service account (in-cluster config)"
        where = f" in {self.kubeconfig}" if self.kubeconfig else ""
        return f"context {self.context or '(current)'}{where}"


def _default_kubeconfig(env: dict[str, str], home: Path) -> str | None:
    """The kubeconfig kubectl would read: ``$KUBECONFIG``, else ``~/.kube/config`` if present."""
    if env.get("KUBECONFIG"):
        return env["KUBECONFIG"]
    path = home / ".kube" / "config"
    return str(path) if path.is_file() else None


def _in_pod(env: dict[str, str], account_dir: Path) -> bool:
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (account_dir / "token").is_file()


def resolve_target(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    env: dict[str, str] | None = None,
    home: Path | None = None,
    account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Target:
    """Pick the kubeconfig (or in-cluster config) as kubectl does; else ``timonel local``'s."""
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else home
    chosen = kubeconfig or _default_kubeconfig(env, home)
    if chosen:
        return Target(chosen, context)
    if context is None and _in_pod(env, account_dir):
        return Target(None, None, in_cluster=True)
    from timonel.local import kubeconfig_path

    local = kubeconfig_path()
    if local.is_file():
        return Target(str(local), context)
    raise ClusterUnreachable(
        "no Kubernetes configuration found: no --kubeconfig, no $KUBECONFIG, no "
        f"{home / '.kube' / 'config'}, not in a pod, and no local cluster ({local}); point "
        "KUBECONFIG at a cluster's kubeconfig, or run `timonel local up` for a local cluster",
        context=context,
    )


class Cluster:
    """A connection to one cluster and a default namespace."""

    def __init__(self, api_client: Any, *, namespace: str = "default", target: Target) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.target = target

    @classmethod
    def connect(
        cls,
        *,
        context: str | None = None,
        kubeconfig: str | Path | None = None,
        namespace: str | None = None,
        account_dir: Path = SERVICE_ACCOUNT_DIR,
    ) -> Cluster:
        """Load a kubeconfig context (or the in-cluster config) into a private client.

        The ``kubernetes`` package's global configuration is left untouched, so two ``Cluster``
        objects can talk to two clusters in one process.
        """
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.config.incluster_config import InClusterConfigLoader
        from yaml import YAMLError

        target = resolve_target(
            kubeconfig=str(kubeconfig) if kubeconfig else None,
            context=context,
            account_dir=account_dir,
        )
        configuration = client.Configuration()
        try:
            if target.in_cluster:
                InClusterConfigLoader(
                    token_filename=str(account_dir / "token"),
                    cert_filename=str(account_dir / "ca.crt"),
                ).load_and_set(configuration)
                default_namespace = (account_dir / "namespace").read_text().strip()
            else:
                config.load_kube_config(
                    config_file=target.kubeconfig,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                contexts, current = config.list_kube_config_contexts(target.kubeconfig)
                chosen = next((c for c in contexts if c["name"] == context), current)
                default_namespace = (chosen or {}).get("context", {}).get("namespace", "")
                target = Target(target.kubeconfig, (chosen or {}).get("name"))
        except (ConfigException, OSError, KeyError, ValueError, YAMLError) as exc:
            fix = (
                "mount the service account token in the pod (automountServiceAccountToken)"
                if target.in_cluster
                else "pick an existing context with --context (`kubectl config get-contexts` "
                "lists them), or run `timonel local up` for a local cluster"
            )
            raise ClusterUnreachable(
                f"cannot load the Kubernetes configuration from {target}: {_one_line(exc)}; {fix}",
                context=target.context,
            ) from exc
        configuration.retries = 0  # a refused connection is reported (or re-tried) by us
        return cls(
            client.ApiClient(configuration),
            namespace=namespace or default_namespace or "default",
            target=target,
        )

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, request: Request, read_timeout: float | None) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return self.api_client.call_api(
                request.path,
                request.method,
                query_params=list(request.query),
                header_params={
                    "Content-Type": request.content_type,
                    "Accept": "application/json",
                    **request.headers,
                },
                body=request.body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=(CONNECT_TIMEOUT, read_timeout),
            )
        except ApiException as exc:
            if not exc.status and isinstance(exc.__context__, HTTPError):
                # The kubernetes client wraps a TLS failure in an ApiException with status 0.
                raise unreachable(
                    request, exc.__context__, host=self.host, target=self.target
                ) from exc
            raise translate(
                request, exc.status or 0, exc.reason, exc.body, host=self.host, target=self.target
            ) from exc
        except HTTPError as exc:
            raise unreachable(request, exc, host=self.host, target=self.target) from exc

    def send(self, request: Request, *, timeout: float = 30.0) -> dict[str, Any]:
        """Send one request and return the decoded JSON body."""
        response = self._call(request, timeout)
        try:
            data = response.data
        finally:
            response.release_conn()
        return json.loads(data) if data else {}

    def stream(
        self,
        request: Request,
        *,
        timeout: float,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Send a watch and yield its events as they arrive (``{"type": ..., "object": ...}``).

        A connection that drops mid-stream raises ``ClusterUnreachable``, so the waiter can
        resume from the last resourceVersion it saw. ``on_open`` is handed a function that ends
        the read from another thread: a controller stopping does not wait out a quiet watch.
        """
        for line in self.lines(request, timeout=timeout, on_open=on_open):
            if line:
                yield json.loads(line)

    def lines(
        self,
        request: Request,
        *,
        timeout: float | None,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Iterator[str]:
        """Send a request whose answer arrives over time (a watch, a followed log) and yield its
        text a line at a time, as each line completes; the last line comes even without its
        newline. ``timeout`` is the longest quiet spell (None: wait as long as it takes).

        A cut connection raises ``ClusterUnreachable``; ``on_open`` is as for ``stream``.
        """
        from urllib3.exceptions import HTTPError

        response = self._call(request, timeout)
        if on_open is not None:
            on_open(lambda: _interrupt(response))
        pending = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", errors="replace")
            if pending:
                yield pending.decode("utf-8", errors="replace")
        except HTTPError as exc:
            raise unreachable(request, exc, host=self.host, target=self.target) from exc
        finally:
            response.close()  # an unfinished stream must not go back to the connection pool
            response.release_conn()


@contextlib.contextmanager
def cluster_or_default(cluster: Cluster | None) -> Iterator[Cluster]:
    """The given cluster, or the default one connected (and closed) for this call only."""
    if cluster is not None:
        yield cluster
        return
    with Cluster.connect() as connected:
        yield connected


def _interrupt(response: Any) -> None:
    """End a blocking read of ``response`` from another thread."""
    try:
        response.shutdown()
    except Exception:  # already closed, or an older urllib3 without shutdown()
        response.close()


_USER = re.compile(r'User "([^"]+)"')
#: The verb RBAC refused, as kube-apiserver's Forbidden message names it ("cannot create ...").
_DENIED_VERB = re.compile(r"\bcannot (\w+) resource\b")
_WEBHOOK = "admission webhook"


def _parse_status(code: int, reason: str | None, body: Any) -> Status:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return Status.from_dict(parsed, code=code)
    return Status(code=code, reason=reason or "", message=str(body or "").strip())


def translate(
    request: Request,
    code: int,
    reason: str | None,
    body: Any,
    *,
    host: str,
    target: Target,
) -> ApiError:
    """Turn an HTTP error from the API server into an ``ApiError`` whose message says what to do."""
    status = _parse_status(code, reason, body)
    said = status.message or status.reason or f"HTTP {code}"
    what = f"{request.verb} {request.target}"
    kind = request.kind
    namespace = f" in namespace {request.namespace}" if request.namespace else ""
    if code == 401:
        message = (
            f"the Kubernetes API at {host} refused the credentials of {target} (401 "
            f"Unauthorized: {said}); refresh the token in that kubeconfig (for the local "
            "cluster, `timonel local up` writes a fresh one)"
        )
    elif _WEBHOOK in status.message:
        # KServe's validating webhook denies with 403 (controller-runtime's default) or 400.
        message = (
            f"KServe refused to {what}: {said}; fix the spec (`timonel render` checks the same "
            "rules before deploying) and try again"
        )
    elif code == 403:
        user = _USER.search(status.message)
        who = f"user {user.group(1)}" if user else "this account"
        denied = _DENIED_VERB.search(status.message)
        group = kind.group or '""'
        message = (
            f"forbidden: {who} may not `{denied.group(1) if denied else request.verb}` "
            f"{kind.group_resource}{namespace} ({said}); grant it a Role rule with apiGroups: "
            f"[{group}], resources: [{request.resource}], verbs: [{', '.join(request.verbs)}] "
            "and bind it to the account"
        )
    elif code == 404 and status.reason != "NotFound":
        message = (
            f"the server at {host} does not serve {kind.api_version} {kind.plural} ({said}); "
            f"install KServe on the cluster, or pick another context with --context"
        )
    elif code == 404:
        message = (
            f"{request.target} was not found{namespace} ({said}); check the name and the "
            "namespace (`timonel list` shows what is deployed)"
        )
    elif code == 409 and status.reason == "AlreadyExists":
        message = f"{request.target} already exists ({said}); use `timonel deploy` to update it"
    elif code == 409:
        message = (
            f"{request.target} changed while Timonel was writing it (409 Conflict: {said}); "
            "run the command again"
        )
    elif code == 422:
        causes = status.details.get("causes") or []
        fields = "; ".join(
            f"{c.get('field', '')}: {c.get('message', '')}".strip(": ") for c in causes
        )
        message = (
            f"the API server rejected {request.target} as invalid: {fields or said}; fix the "
            "spec and try again"
        )
    else:
        answer = f"{code} {status.reason or reason or ''}".strip()
        advice = (
            "the server failed, not the request: try again, and check the cluster's health if "
            "it persists"
            if code >= 500
            else "fix what it names and try again"
        )
        message = f"the Kubernetes API refused to {what} ({answer}: {said}); {advice}"
    return ApiError(message, status=status)


def unreachable(
    request: Request, exc: Exception, *, host: str, target: Target
) -> ClusterUnreachable:
    """A connection that could not be made (refused, DNS, TLS) or was cut: no server answered,
    so there is no Status; the waiter retries these until its deadline."""
    return ClusterUnreachable(
        f"cannot reach the Kubernetes API at {host} ({target}) to {request.verb} "
        f"{request.target}: {_one_line(exc)}; check that the cluster is running (`timonel local "
        "up` for the local one), that its certificate is the one in the kubeconfig, or pick "
        "another context with --context (`kubectl config get-contexts` lists them, `kubectl "
        "config use-context` sets the default)",
        context=target.context,
        server=host,
    )


def _one_line(exc: BaseException) -> str:
    """urllib3 and the kubeconfig loader put newlines in their messages; the CLI prints one."""
    return " ".join(str(exc).split()) or type(exc).__name__
