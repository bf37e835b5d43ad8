"""The HTTP face of the local API server: routes, bearer-token auth, content types and watches.

aiohttp, because watches are long-lived streams and every open watch must cost a coroutine, not
a thread. Each request is parsed here and handed to the :class:`Registry`; every ApiError becomes
a Kubernetes Status body with its code. Watches read the store's event log after the
resourceVersion asked for, then wait for the registry's next write.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from timonel.errors import ApiError
from timonel.kube.resources import (
    EVENT,
    KNATIVE_REVISION,
    KNATIVE_SERVICE,
    NAMESPACE,
    POD,
    SELF_SUBJECT_ACCESS_REVIEW,
    Kind,
)
from timonel.local.apiserver import discovery, logs, openapi, patches, protobuf, statuses, tables
from timonel.local.apiserver.registry import Registry
from timonel.local.apiserver.selectors import Selector, field_selector, label_selector
from timonel.local.apiserver.statuses import FieldError
from timonel.local.apiserver.store import resource_key
from timonel.local.knative import WRITER, refusal
from timonel.local.pods import SERVER_CONTAINER
from timonel.local.revisions import RevisionStore

#: How long an idle watch with allowWatchBookmarks waits before sending a BOOKMARK.
BOOKMARK_INTERVAL = 60.0
#: How often a followed log (``kubectl logs -f``) is checked for new lines.
LOG_FOLLOW_INTERVAL = 0.2
#: A watch without timeoutSeconds ends after this long, as the real server's default does.
DEFAULT_WATCH_TIMEOUT = 1800

_OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
#: ``/api/v1/namespaces/NAME`` is a namespace; the core kinds inside namespaces are named here.
_CORE_NAMESPACED = "|".join(k.plural for k in discovery.SERVED if not k.group and k.namespaced)
_CORE = re.compile(
    rf"^/api/(?P<version>v1)(?:/namespaces/(?P<namespace>[^/]+)(?=/(?:{_CORE_NAMESPACED})(?:/|$)))?"
    r"/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|log))?/?$"
)
_GROUP = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?:/namespaces/(?P<namespace>[^/]+))?"
    r"/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?/?$"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(
        body, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":"))
    )


def _failure(exc: ApiError) -> web.Response:
    return _json(statuses.to_body(exc.status), exc.status.code)


def _content_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "application/json").split(";")[0].strip()


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


#: The kinds whose bodies are also read in protobuf, as kubectl's typed clients send them.
_PROTOBUF_SCHEMAS = {
    NAMESPACE: protobuf.NAMESPACE,
    SELF_SUBJECT_ACCESS_REVIEW: protobuf.SELF_SUBJECT_ACCESS_REVIEW,
}

#: The annotation on the BOOKMARK that ends a watch's initial events (``sendInitialEvents``).
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

#: Whom watch-parameter errors name, as kube-apiserver's ListOptions validation does.
_LIST_OPTIONS = Kind("meta.k8s.io", "v1", "ListOptions", "")


@dataclass(frozen=True)
class WatchOptions:
    """A watch request's parameters, validated as kube-apiserver does (``validateWatchOptions``).

    ``initial_events``: begin with an ADDED event per existing object (asked with
    ``sendInitialEvents=true``, or by default when no resourceVersion or "0" is given);
    ``initial_events_end``: then a BOOKMARK annotated ``k8s.io/initial-events-end: "true"``,
    which client-go's watch-list (kubectl 1.37's ``wait``, informers) waits for before it trusts
    its cache; ``from_now``: no resourceVersion and ``sendInitialEvents=false``, so only changes
    from now on.
    """

    resource_version: int
    timeout: float
    bookmarks: bool
    initial_events: bool
    initial_events_end: bool
    from_now: bool


def _bool_parameter(query: Mapping[str, str], name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false", "1", "0"):
        raise statuses.bad_request(f'invalid watch parameter {name}: "{value}" is not a boolean')
    return value.lower() in ("true", "1")


def watch_options(query: Mapping[str, str]) -> WatchOptions:
    """Read and check the parameters of a ``?watch=true`` request."""
    asked = query.get("resourceVersion", "")
    try:
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        version = int(asked) if asked else 0
    except ValueError as exc:
        raise statuses.bad_request(f"invalid watch parameter: {exc}") from exc
    send_initial = _bool_parameter(query, "sendInitialEvents")
    bookmarks = _bool_parameter(query, "allowWatchBookmarks") or False
    match = query.get("resourceVersionMatch", "")
    errors: list[FieldError] = []
    if send_initial is not None and match != "NotOlderThan":
        errors.append(
            FieldError(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                "NotOlderThan",
            )
        )
    if match:
        if send_initial is None:
            errors.append(
                FieldError(
                    "resourceVersionMatch",
                    "FieldValueForbidden",
                    "Forbidden: resourceVersionMatch is forbidden for watch unless "
                    "sendInitialEvents is provided",
                )
            )
        if match != "NotOlderThan":
            errors.append(
                FieldError(
                    "resourceVersionMatch",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{match}": supported values: "NotOlderThan"',
                )
            )
    if errors:
        raise statuses.invalid(_LIST_OPTIONS, "", errors)
    initial = send_initial if send_initial is not None else version == 0
    return WatchOptions(
        resource_version=version,
        timeout=timeout,
        bookmarks=bookmarks,
        initial_events=initial,
        # kube-apiserver's watch cache ends the initial events only for a client that asked
        # for them and accepts bookmarks.
        initial_events_end=bool(send_initial) and bookmarks,
        from_now=send_initial is False and version == 0,
    )


def _bookmark(kind: Kind, version: int, *, initial_events_end: bool = False) -> dict[str, Any]:
    """A BOOKMARK's object: the kind with nothing but the resourceVersion reached."""
    metadata: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_events_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": metadata}


class ApiServer:
    """An aiohttp application serving ``registry`` to clients that present ``token``."""

    def __init__(
        self,
        registry: Registry,
        token: str,
        *,
        bookmark_interval: float = BOOKMARK_INTERVAL,
        revisions: RevisionStore,
    ) -> None:
        self.registry = registry
        self.revisions = revisions
        self.token = token
        self.bookmark_interval = bookmark_interval
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        registry.listeners.append(self._notify)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors_and_auth], client_max_size=8 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        self._stopping.set()
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @web.middleware
    async def _errors_and_auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path not in _OPEN_PATHS:
                header = request.headers.get("Authorization", "")
                given = header[7:].strip() if header.lower().startswith("bearer ") else ""
                if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
                    raise statuses.unauthorized()
            return await handler(request)
        except ApiError as exc:
            return _failure(exc)

    # -- routing -------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.method == "GET":
            document = self._document(path)
            if document is not None:
                return _json(document)
            if path.startswith("/openapi/v3/"):
                body = openapi.group_version(path)
                if body is None:
                    raise statuses.no_such_path()
                return web.Response(body=body, content_type="application/json")
            if path in _OPEN_PATHS:
                return web.Response(text="ok")
        match = _GROUP.match(path) or _CORE.match(path)
        if not match:
            raise statuses.no_such_path()
        parts = match.groupdict()
        kind = discovery.find(parts.get("group") or "", parts["version"], parts["plural"])
        if kind is None or (parts["namespace"] is not None) != (
            kind.namespaced and parts["namespace"] is not None
        ):
            raise statuses.no_such_path()
        if (
            kind in (KNATIVE_SERVICE, KNATIVE_REVISION)
            and request.method != "GET"
            and request.query.get("fieldManager") != WRITER
        ):
            raise refusal(kind, request.method, parts["name"])
        if parts["sub"] == "log" and kind is POD and parts["name"]:
            if request.method != "GET":
                raise statuses.method_not_allowed(request.method)
            return await self._log(request, parts["namespace"] or "", parts["name"])
        if parts["sub"] and not (
            kind.status_subresource and parts["name"] and parts["sub"] == "status"
        ):
            raise statuses.no_such_path()
        namespace = parts["namespace"] or ""
        if kind is EVENT:
            return self._events(request)
        if kind is SELF_SUBJECT_ACCESS_REVIEW and (request.method != "POST" or parts["name"]):
            raise statuses.method_not_allowed(request.method)
        if parts["name"] is None:
            return await self._collection(request, kind, namespace, parts["namespace"] is None)
        return await self._item(request, kind, namespace, parts["name"], parts["sub"])

    async def _log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        """A container's output (``kubectl logs``), read from the revision's files; with
        ``follow``, lines appended later are sent as they come, until the client leaves or
        the pod goes."""
        pod = self.registry.get(POD, namespace, name)
        container = request.query.get("container")
        path = logs.log_file(self.revisions, pod, container)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = b""
        text = raw.decode("utf-8", errors="replace")
        tail = request.query.get("tailLines")
        try:
            tail_lines = int(tail) if tail is not None else None
        except ValueError:
            raise statuses.bad_request(f"tailLines must be an integer, not {tail!r}") from None
        previous = _flag(request, "previous")
        body = logs.container_log(
            text,
            previous=previous,
            tail_lines=tail_lines,
            pod=name,
            container=container or SERVER_CONTAINER,
        )
        if not _flag(request, "follow") or previous:
            return web.Response(text=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(body.encode())
        offset = len(raw)
        uid = pod["metadata"].get("uid")
        while not self._stopping.is_set() and self._pod_uid(namespace, name) == uid:
            await asyncio.sleep(LOG_FOLLOW_INTERVAL)
            added = logs.appended(path, offset)
            if added:
                offset += len(added)
                await response.write(logs.without_run_markers(added))
        return response

    def _pod_uid(self, namespace: str, name: str) -> str | None:
        """The uid of the pod of that name, or None: a followed log ends when its pod goes."""
        obj = self.registry.store.get(resource_key(POD), namespace, name)
        return None if obj is None else obj["metadata"].get("uid")

    def _document(self, path: str) -> dict[str, Any] | None:
        path = path.rstrip("/") or "/"
        if path == "/version":
            return discovery.KUBERNETES_VERSION
        if path == "/openapi/v3":
            return openapi.root()
        if path == "/api":
            return discovery.api_versions()
        if path == "/apis":
            return discovery.api_group_list()
        if path == "/api/v1":
            return discovery.resource_list("v1")
        pieces = path.split("/")
        if len(pieces) == 3 and pieces[1] == "apis":
            return discovery.api_group(pieces[2])
        if len(pieces) == 4 and pieces[1] == "apis":
            return discovery.resource_list(f"{pieces[2]}/{pieces[3]}")
        return None

    def _events(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET" or _flag(request, "watch"):
            raise statuses.method_not_allowed(request.method)
        version = str(self.registry.store.resource_version())
        return _json(
            {
                "kind": "EventList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": version},
                "items": [],
            }
        )

    async def _collection(
        self, request: web.Request, kind: Kind, namespace: str, all_namespaces: bool
    ) -> web.StreamResponse:
        if request.method == "GET":
            selector = self._selector(request)
            scope = None if all_namespaces else namespace
            if _flag(request, "watch"):
                return await self._watch(request, kind, scope, selector)
            items, version = self.registry.list(kind, scope, selector)
            if "as=Table" in request.headers.get("Accept", ""):
                return _json(tables.table(kind, items, str(version)))
            return _json(
                {
                    "apiVersion": kind.api_version,
                    "kind": f"{kind.kind}List",
                    "metadata": {"resourceVersion": str(version)},
                    "items": items,
                }
            )
        if kind is SELF_SUBJECT_ACCESS_REVIEW:
            return _json(self._review(await self._body(request, kind)), 201)
        if request.method == "POST" and (not kind.namespaced or not all_namespaces):
            body = await self._body(request, kind)
            created = self.registry.create(
                kind,
                namespace,
                body,
                manager=self._manager(request),
                dry_run=self._dry_run(request),
            )
            return _json(created, 201)
        raise statuses.method_not_allowed(request.method)

    async def _item(
        self, request: web.Request, kind: Kind, namespace: str, name: str, sub: str | None
    ) -> web.StreamResponse:
        method = request.method
        if method == "GET":
            obj = self.registry.get(kind, namespace, name)
            if "as=Table" in request.headers.get("Accept", ""):
                return _json(tables.table(kind, [obj], obj["metadata"]["resourceVersion"]))
            return _json(obj)
        dry_run = self._dry_run(request)
        if kind is NAMESPACE and method == "DELETE":
            options = await self._delete_options(request)
            return _json(self.registry.delete_namespace(name, options, dry_run=dry_run))
        if kind is NAMESPACE:
            raise statuses.method_not_allowed(method)
        if method == "PUT":
            body = await self._body(request, kind)
            updated = self.registry.replace(
                kind,
                namespace,
                name,
                body,
                manager=self._manager(request),
                subresource=sub,
                dry_run=dry_run,
            )
            return _json(updated)
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            existed = self.registry.store.get(resource_key(kind), namespace, name) is not None
            patched = self.registry.patch(
                kind,
                namespace,
                name,
                await request.read(),
                content_type,
                manager=request.query.get("fieldManager")
                or (None if content_type == patches.APPLY else self._manager(request)),
                force=_flag(request, "force"),
                subresource=sub,
                dry_run=dry_run,
            )
            return _json(patched, 200 if existed else 201)
        if method == "DELETE" and sub is None:
            options = await self._delete_options(request)
            body, gone = self.registry.delete(
                kind, namespace, name, options, dry_run=dry_run or bool(options.get("dryRun"))
            )
            return _json(body, 200 if gone else 202)
        raise statuses.method_not_allowed(method)

    # -- watch ---------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, kind: Kind, namespace: str | None, selector: Selector
    ) -> web.StreamResponse:
        options = watch_options(request.query)
        # Fixed before the headers go out: a client may write as soon as it sees them.
        since = self.registry.store.resource_version() if options.from_now else None
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(kind_of_event: str, obj: dict[str, Any]) -> None:
            line = json.dumps({"type": kind_of_event, "object": obj}, separators=(",", ":"))
            await response.write(line.encode() + b"\n")

        try:
            await self._stream(send, kind, namespace, selector, options, since)
            if self._stopping.is_set():
                # A client's watch loop reconnects at once on the same keep-alive connection,
                # which would keep a stopping server's connection busy past its close.
                response.force_close()
            await response.write_eof()
        except ConnectionResetError:  # the client went away; nothing to tell it
            pass
        return response

    async def _stream(
        self,
        send: Callable[[str, dict[str, Any]], Awaitable[None]],
        kind: Kind,
        namespace: str | None,
        selector: Selector,
        options: WatchOptions,
        now: int | None,
    ) -> None:
        """Send the watch's events until its timeout, a 410, or the server stopping.

        ``now``: the resourceVersion a watch from now on starts after.
        """
        store = self.registry.store
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.timeout
        since = options.resource_version
        if since > store.resource_version():
            error = statuses.too_large_resource_version(since, store.resource_version())
            await send("ERROR", statuses.to_body(error.status))
            return
        if options.initial_events:
            # The state now, which is "not older than" any version the client may have asked.
            items, since = self.registry.list(kind, namespace, selector)
            for obj in items:
                await send("ADDED", obj)
        elif now is not None:
            since = now
        if options.initial_events_end:
            await send("BOOKMARK", _bookmark(kind, since, initial_events_end=True))
        idle_since = loop.time()
        bookmarks = options.bookmarks
        while not self._stopping.is_set() and loop.time() < deadline:
            changed = self._changed
            current = store.resource_version()
            try:
                events = store.events_after(resource_key(kind), since)
            except ApiError as exc:
                await send("ERROR", statuses.to_body(exc.status))
                break
            for event in events:
                obj = event.object
                if namespace is None or obj["metadata"].get("namespace") == namespace:
                    was = event.previous is not None and selector(event.previous)
                    now = selector(obj)
                    if event.type == "MODIFIED" and was != now:
                        await send("ADDED" if now else "DELETED", obj)
                    elif now or (event.type == "DELETED" and was):
                        await send(event.type, obj)
                    idle_since = loop.time()
                since = event.resource_version
            since = max(since, current)
            wait = deadline - loop.time()
            if bookmarks:
                wait = min(wait, idle_since + self.bookmark_interval - loop.time())
            try:
                await asyncio.wait_for(changed.wait(), timeout=max(wait, 0))
            except TimeoutError:
                if bookmarks and loop.time() - idle_since >= self.bookmark_interval:
                    await send("BOOKMARK", _bookmark(kind, since))
                    idle_since = loop.time()

    # -- request parsing -----------------------------------------------------------------------

    def _selector(self, request: web.Request) -> Selector:
        labels = label_selector(request.query.get("labelSelector"))
        fields = field_selector(request.query.get("fieldSelector"))
        return lambda obj: labels(obj) and fields(obj)

    def _dry_run(self, request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise statuses.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return bool(values)

    def _manager(self, request: web.Request) -> str:
        """fieldManager, or the User-Agent's product name as the real server derives it."""
        manager = request.query.get("fieldManager")
        if manager:
            return manager
        return request.headers.get("User-Agent", "unknown").split("/")[0][:128] or "unknown"

    def _review(self, review: dict[str, Any]) -> dict[str, Any]:
        """Answer ``kubectl auth can-i`` from the token's permissions.

        The local cluster has one token and it may do everything, as the admin kubeconfig of a
        new cluster may (any other token is refused before this: 401).
        """
        return {
            **review,
            "metadata": {**review.get("metadata", {}), "creationTimestamp": None},
            "status": {
                "allowed": True,
                "reason": "the local cluster's token may do everything",
            },
        }

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        """DeleteOptions from the query (``?propagationPolicy=Orphan``), then the body, which
        kube-apiserver reads over them."""
        query: dict[str, Any] = {
            key: request.query[key]
            for key in ("propagationPolicy", "gracePeriodSeconds")
            if key in request.query
        }
        if "orphanDependents" in request.query:
            query["orphanDependents"] = request.query["orphanDependents"] == "true"
        raw = await request.read()
        if not raw.strip():
            return query
        if _content_type(request) == protobuf.PROTOBUF:
            return {**query, **protobuf.decode(raw, protobuf.DELETE_OPTIONS)}
        options = self._parse(raw, "application/json")
        return {**query, **options} if isinstance(options, dict) else query

    async def _body(self, request: web.Request, kind: Kind) -> dict[str, Any]:
        content_type = _content_type(request)
        schema = _PROTOBUF_SCHEMAS.get(kind)
        if content_type == protobuf.PROTOBUF and schema is not None:
            return protobuf.decode(await request.read(), schema)
        if content_type not in ("application/json", "application/yaml", ""):
            raise statuses.unsupported_media_type(["application/json", "application/yaml"])
        body = self._parse(await request.read(), content_type)
        if not isinstance(body, dict):
            raise statuses.bad_request("the request body must be an object")
        return body

    def _parse(self, raw: bytes, content_type: str) -> Any:
        try:
            if content_type == "application/yaml":
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise statuses.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from exc
