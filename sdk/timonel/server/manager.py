"""The model lifecycle, as TF Serving's ServerCore runs it.

For each configured model the manager polls the base path, applies the version policy, and loads
and unloads versions one action at a time with the availability-preserving policy: a new version
loads (and warms up) before the old one unloads, a version that fails to load ends in ``END`` with
its error while the old one keeps serving, and a version being unloaded first stops receiving
requests, then waits for its in-flight calls before its session closes.

All loads and unloads happen on the manager's own thread (or the thread of a config reload), one at
a time, as TF Serving does with its default of serial loads. Request threads never wait on it: they
read an immutable routing table that the manager replaces whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from timonel.errors import ServingError
from timonel.server.policy import Action, State, VersionSnapshot, aspired_versions, next_action
from timonel.server.servable import Servable
from timonel.server.source import discover_versions
from timonel.tfserving import TENSORFLOW_PLATFORM, ModelConfig

log = logging.getLogger("timonel.server")

#: How long an unload waits for in-flight calls before closing the session anyway.
DRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class VersionStatus:
    """One entry of ``GetModelStatusResponse.model_version_status``."""

    version: int
    state: State
    error_code: str = "OK"
    error_message: str = ""


@dataclass(frozen=True)
class Routes:
    """What a request can reach of one model: available versions, latest, labels."""

    servables: Mapping[int, Servable]
    labels: Mapping[str, int]

    @property
    def latest(self) -> Servable | None:
        return self.servables[max(self.servables)] if self.servables else None


@dataclass
class _Version:
    version: int
    path: str
    state: State = State.START
    aspired: bool = True
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None


@dataclass
class _Model:
    config: ModelConfig
    versions: dict[int, _Version] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


Loader = Callable[[str, int, str], Servable]


class ModelManager:
    """Loads, serves and unloads the versions of the configured models.

    ``loader(name, version, path)`` returns a ready (warmed-up) servable or raises
    ``ServingError``; it is injected so tests and the app decide how models load.
    """

    def __init__(
        self,
        loader: Loader,
        *,
        poll_seconds: float = 1.0,
        max_load_retries: int = 5,
        load_retry_seconds: float = 60.0,
        allow_labels_for_unavailable_models: bool = False,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._loader = loader
        self._poll_seconds = poll_seconds
        self._max_load_retries = max_load_retries
        self._load_retry_seconds = load_retry_seconds
        self._allow_unavailable_labels = allow_labels_for_unavailable_models
        self._on_change = on_change
        self._models: dict[str, _Model] = {}
        self._retired: set[str] = set()  # models left out of the config: unloading, or ended
        self._routes: Mapping[str, Routes] = MappingProxyType({})
        self._cycle = threading.Lock()  # one reconcile (and so one load) at a time
        self._state = threading.Lock()  # guards _models; never held while loading
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- configuration ---------------------------------------------------------------------

    def configure(self, models: Sequence[ModelConfig]) -> None:
        """Serve exactly ``models`` from now on, then load what they need (blocks until done).

        Labels must point at available versions (FAILED_PRECONDITION otherwise), unless
        ``allow_labels_for_unavailable_models`` and the label is new or keeps its version.
        Models left out are unloaded (their versions' END states stay visible, as in TF
        Serving's servable state monitor); platform changes are refused.
        """
        with self._cycle:
            with self._state:
                self._check_configs(models)
                current = self._models
                self._models = {
                    c.name: _Model(c, self._carried(c.name), dict(c.labels)) for c in models
                }
                for name, model in current.items():
                    if name not in self._models:
                        self._models[name] = model
                        self._retired.add(name)
                self._retired -= {c.name for c in models}
                self._publish()  # labels take effect now, even when no version loads
            self._reconcile()

    def _check_configs(self, models: Sequence[ModelConfig]) -> None:
        """``ServerCore::ReloadConfig``'s checks, in its order: no model changes platform, every
        label points at an available version, every platform is one this server serves."""
        for config in models:
            old = self._models.get(config.name)
            if old is not None and old.config.platform != config.platform:
                raise ServingError(
                    "Illegal to change a model's platform. For model "
                    f"{config.name} platform was {old.config.platform} and new platform "
                    f"requested is {config.platform}",
                    code="INVALID_ARGUMENT",
                )
        for config in models:
            self._check_labels(config)
        for config in models:
            if config.platform != TENSORFLOW_PLATFORM:
                raise ServingError(
                    f"Model {config.name} requests unsupported platform {config.platform}; "
                    "this server serves SavedModels only: set model_platform: "
                    f'"{TENSORFLOW_PLATFORM}"',
                    code="INVALID_ARGUMENT",
                )

    def _check_labels(self, config: ModelConfig) -> None:
        old = self._models.get(config.name)
        routes = self._routes.get(config.name)
        available = set(routes.servables) if routes else set()
        for label, version in config.labels.items():
            if version in available:
                continue
            previous = old.labels.get(label) if old else None
            if self._allow_unavailable_labels and previous in (None, version):
                continue
            raise ServingError(
                f"Request to assign label to version {version} of model {config.name}, which is "
                "not currently available for inference",
                code="FAILED_PRECONDITION",
            )

    def _carried(self, name: str) -> dict[int, _Version]:
        """The versions a model configured again keeps: all of them, unless it had been left
        out, when the versions it ended are forgotten so that they load again."""
        model = self._models.get(name)
        if model is None:
            return {}
        if name not in self._retired:
            return model.versions
        return {v: r for v, r in model.versions.items() if r.state is not State.END}

    # ---- the polling loop ------------------------------------------------------------------

    def start(self) -> None:
        """Poll the base paths every ``poll_seconds`` in a background thread (0: never)."""
        if self._poll_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll_loop, name="model-manager", daemon=True)
        self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
            except Exception:  # the loop must outlive any one bad poll
                log.exception("model poll failed")

    def poll(self) -> None:
        """Look for new or removed versions now and act on them (blocks until done)."""
        with self._cycle:
            self._reconcile()

    def request_stop(self) -> None:
        """Make waits and load retries give up; safe from any thread or signal handler."""
        self._stop.set()

    def stop(self) -> None:
        """Stop polling and unload every version."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._cycle, self._state:
            models = list(self._models.values())
            self._routes = MappingProxyType({})
        for model in models:
            for record in model.versions.values():
                if record.servable is not None:
                    record.servable.wait_idle(DRAIN_SECONDS)
                    record.servable.close()
                    record.servable = None
                    record.state = State.END

    # ---- reconcile -------------------------------------------------------------------------

    def _reconcile(self) -> None:
        for name in list(self._models):
            model = self._models[name]
            retired = name in self._retired
            on_disk: dict[int, str] = {}
            if not retired:
                try:
                    on_disk = discover_versions(name, model.config.base_path)
                except ServingError as exc:
                    log.error("%s", exc)
                    continue
                if not on_disk:
                    log.warning(
                        "No versions of servable %s found under base path %s. Did you forget to "
                        "name your leaf directory as a number (eg. '/1/')?",
                        name,
                        model.config.base_path,
                    )
            aspired = (
                aspired_versions(model.config.version_policy, on_disk) if not retired else set()
            )
            with self._state:
                for version, path in on_disk.items():
                    if version in aspired and version not in model.versions:
                        model.versions[version] = _Version(version, path)
                for record in model.versions.values():
                    record.aspired = record.version in aspired
                    if not record.aspired and record.state is State.START:
                        record.state = State.END
            while (action := self._next(model)) is not None:
                kind, version = action
                if kind is Action.LOAD:
                    self._load(model, model.versions[version])
                else:
                    self._unload(model, model.versions[version])

    def _next(self, model: _Model) -> tuple[Action, int] | None:
        # A version that failed stays aspired (in END), as in TF Serving: it keeps the previous
        # version from being unloaded.
        return next_action(
            [VersionSnapshot(r.version, r.state, r.aspired) for r in model.versions.values()]
        )

    def _load(self, model: _Model, record: _Version) -> None:
        name = model.config.name
        with self._state:
            record.state = State.LOADING
        log.info("Loading servable version {name: %s version: %d}", name, record.version)
        attempt = 0
        while True:
            try:
                servable = self._loader(name, record.version, record.path)
                break
            except ServingError as exc:
                if attempt >= self._max_load_retries or self._stop.is_set():
                    with self._state:
                        record.state = State.END
                        record.error_code = exc.code
                        record.error_message = str(exc)
                    log.error(
                        "Loading servable version {name: %s version: %d} failed: %s: %s",
                        name,
                        record.version,
                        exc.code,
                        exc,
                    )
                    return
                attempt += 1
                log.warning(
                    "Loading servable version {name: %s version: %d} failed (%s); retry %d of %d",
                    name,
                    record.version,
                    exc,
                    attempt,
                    self._max_load_retries,
                )
                if self._stop.wait(self._load_retry_seconds):
                    continue
        with self._state:
            record.servable = servable
            record.state = State.AVAILABLE
            self._publish()
        log.info(
            "Successfully loaded servable version {name: %s version: %d}", name, record.version
        )

    def _unload(self, model: _Model, record: _Version) -> None:
        servable = record.servable
        with self._state:
            record.state = State.UNLOADING
            record.servable = None
            self._publish()  # new requests stop reaching it before it closes
        if servable is not None:
            if not servable.wait_idle(DRAIN_SECONDS):
                log.warning(
                    "Unloading %s version %d with calls still running",
                    servable.name,
                    servable.version,
                )
            servable.close()
        with self._state:
            record.state = State.END
        log.info(
            "Unloaded servable version {name: %s version: %d}", model.config.name, record.version
        )

    def _publish(self) -> None:
        """Swap in a new routing table (called with ``_state`` held)."""
        routes = {}
        for name, model in self._models.items():
            if name in self._retired:
                continue
            servables = {
                v: r.servable
                for v, r in model.versions.items()
                if r.servable is not None and r.state is State.AVAILABLE
            }
            routes[name] = Routes(MappingProxyType(servables), MappingProxyType(dict(model.labels)))
        self._routes = MappingProxyType(routes)
        if self._on_change is not None:
            self._on_change()

    # ---- what requests see -----------------------------------------------------------------

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request's ModelSpec names, with TF Serving's errors."""
        routes = self._routes.get(name)
        if label is not None:
            if routes is None or label not in routes.labels:
                raise ServingError(
                    f"Unrecognized servable version label: {label}", code="INVALID_ARGUMENT"
                )
            version = routes.labels[label]
        if version is None:
            latest = routes.latest if routes else None
            if latest is None:
                raise ServingError(
                    f"Servable not found for request: Latest({name})", code="NOT_FOUND"
                )
            return latest
        servable = routes.servables.get(version) if routes else None
        if servable is None:
            raise ServingError(
                f"Servable not found for request: Specific({name}, {version})", code="NOT_FOUND"
            )
        return servable

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Every known version of a model (or one), with state and last error."""
        with self._state:
            model = self._models.get(name)
            records = (
                sorted(model.versions.values(), key=lambda r: -r.version)
                if model is not None
                else []
            )
            statuses = [
                VersionStatus(r.version, r.state, r.error_code, r.error_message) for r in records
            ]
        if not statuses:
            raise ServingError(f"Could not find any versions of model {name}", code="NOT_FOUND")
        if version is not None:
            statuses = [s for s in statuses if s.version == version]
            if not statuses:
                raise ServingError(
                    f"Could not find version {version} of model {name}", code="NOT_FOUND"
                )
        return statuses

    def in_flight(self) -> dict[tuple[str, ...], float]:
        """Requests holding each loaded version now, by (model name, version)."""
        with self._state:
            return {
                (name, str(record.version)): record.servable.inflight
                for name, model in self._models.items()
                for record in model.versions.values()
                if record.servable is not None
            }

    def model_names(self) -> list[str]:
        return sorted(self._routes)

    def unavailable(self) -> list[str]:
        """Models whose latest aspired version is not serving yet (startup waits on these)."""
        with self._state:
            waiting = []
            for name, model in self._models.items():
                if name in self._retired:
                    continue
                aspired = [r for r in model.versions.values() if r.aspired]
                if (
                    not aspired
                    or max(aspired, key=lambda r: r.version).state is not State.AVAILABLE
                ):
                    waiting.append(name)
            return sorted(waiting)

    def failed(self) -> list[tuple[str, VersionStatus]]:
        """Aspired versions whose load ended in an error."""
        with self._state:
            return [
                (name, VersionStatus(r.version, r.state, r.error_code, r.error_message))
                for name, model in self._models.items()
                for r in model.versions.values()
                if r.aspired and r.state is State.END and r.error_code != "OK"
            ]

    def wait_until_available(self, deadline: float | None = None) -> None:
        """Block until the latest aspired version of every model serves (as TF Serving's startup).

        A load that failed for good raises ``ServingError`` with TF Serving's startup message.
        """
        while True:
            failures = self.failed()
            if failures:
                details = ", ".join(
                    f"{{{{name: {name} version: {s.version}}} due to error: "
                    f"{s.error_code}: {s.error_message}}}"
                    for name, s in failures
                )
                raise ServingError(
                    f"{len(failures)} servable(s) did not become available: {{{details}, }}",
                    code="UNKNOWN",
                )
            if not self.unavailable():
                return
            if deadline is not None and time.monotonic() > deadline:
                raise ServingError(
                    f"models {', '.join(self.unavailable())} did not become available in time",
                    code="DEADLINE_EXCEEDED",
                )
            if self._stop.wait(0.05):
                raise ServingError("server stopped while waiting for models", code="CANCELLED")
