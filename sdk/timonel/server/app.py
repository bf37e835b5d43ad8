"""The model server process: models first, then ports, then a graceful drain on SIGTERM.

Startup follows TF Serving: the latest version of every configured model loads (and warms up)
before the gRPC and REST ports open, so an open port means ready; a load that fails for good ends
startup with ``ServingError`` (the CLI prints ``Failed to start server. Error: <status>``). On
SIGTERM or SIGINT the listeners close, in-flight requests finish (up to ``drain_seconds``), the
models unload and ``serve`` returns. Logs are JSON lines on stderr; stdout stays empty.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson

from timonel.errors import ServingError, SpecError, TimonelError
from timonel.server.access_log import LOGGER, AccessLog, access_log
from timonel.server.channel_arguments import channel_limits
from timonel.server.cpus import usable_cpus
from timonel.server.options import ServerOptions
from timonel.server.sizing import thread_sizing

log = logging.getLogger("timonel.server")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any structured ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        if message:
            entry["msg"] = message
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: int = logging.INFO) -> None:
    """Send the server's logs (including access logs) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger("timonel")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    access = logging.getLogger(LOGGER)
    access.handlers[:] = [AccessLog(handler)]
    access.propagate = False


def flush_access_log() -> None:
    for handler in logging.getLogger(LOGGER).handlers:
        handler.flush()


def _model_configs(options: ServerOptions) -> list[Any]:
    from timonel.tfserving import ModelConfig, read_models_config

    if options.model_config_file:
        return list(read_models_config(options.model_config_file))
    base_path = options.model_base_path
    if not base_path.startswith(("/", "file://")) and "://" not in base_path:
        base_path = os.path.abspath(base_path)
    return [ModelConfig(name=options.model_name, base_path=base_path)]


class ModelServer:
    """One server: the manager, the runner, and (once models are up) the two listeners."""

    def __init__(self, options: ServerOptions) -> None:
        from timonel.server.inference import Inference
        from timonel.server.manager import ModelManager
        from timonel.server.metrics import ServerMetrics

        self.options = options
        batching = self._batching_parameters()
        self.sizing = thread_sizing(
            options,
            usable_cpus(),
            num_batch_threads=None if batching is None else batching.num_batch_threads,
        )
        log.info(self.sizing.describe())
        self._stopping = threading.Event()
        self.manager = ModelManager(
            self._load,
            poll_seconds=options.file_system_poll_wait_seconds,
            max_load_retries=options.max_num_load_retries,
            load_retry_seconds=options.load_retry_interval_micros / 1e6,
            allow_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
        )
        self.metrics = ServerMetrics(in_flight=self.manager.in_flight)
        self.inference = Inference(
            self.manager, self._make_runner(batching), self.metrics, access_log=access_log()
        )
        self.monitoring_path = self._monitoring_path()
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # ---- setup -----------------------------------------------------------------------------

    def _batching_parameters(self) -> Any:
        """The batching parameters when calls are batched, else None."""
        if self.options.platform_config_file:
            # As TF Serving: a platform config replaces the flags' session bundle config, the
            # batching flags included. Its contents are read, not applied (see --help).
            from timonel.tfserving._files import read_config_text

            read_config_text(
                self.options.platform_config_file,
                what="platform config",
                flag="--platform_config_file",
            )
            return None
        if not self.options.enable_batching:
            return None
        from timonel.tfserving import BatchingParameters, read_batching_parameters

        if self.options.batching_parameters_file:
            return read_batching_parameters(self.options.batching_parameters_file)
        return BatchingParameters(thread_pool_name="model_server_batch_threads")

    def _make_runner(self, batching: Any) -> Any:
        if batching is None:
            from timonel.server.runner import DirectRunner

            return DirectRunner(self.sizing.runner_threads)
        from timonel.server.batching import BatchScheduler

        assert self.sizing.batch_threads is not None
        return BatchScheduler(batching, self.metrics, threads=self.sizing.batch_threads)

    def _monitoring_path(self) -> str | None:
        if not self.options.monitoring_config_file:
            return None
        from timonel.tfserving import read_monitoring_config

        config = read_monitoring_config(self.options.monitoring_config_file)
        return config.prometheus_path if config.prometheus_enabled else None

    def _session_config(self) -> Any:
        """The sessions' ConfigProto: the config file's, with the flags written over it in TF
        Serving's way (``server.cc``: the GPU fraction always; intra/inter-op threads from
        their own flags when either is set, else both from --tensorflow_session_parallelism;
        0 is sized from the CPUs, ``self.sizing``)."""
        import tensorflow as tf

        options = self.options
        config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        if options.tensorflow_session_config_file:
            from timonel.tfserving._files import parse_config_text, read_config_text

            text, source = read_config_text(
                options.tensorflow_session_config_file,
                what="session config",
                flag="--tensorflow_session_config_file",
            )
            parse_config_text(
                text,
                config,
                source=source,
                fix="write a text ConfigProto such as gpu_options { allow_growth: true }",
            )
        config.gpu_options.per_process_gpu_memory_fraction = options.per_process_gpu_memory_fraction
        config.intra_op_parallelism_threads = self.sizing.intra_op
        config.inter_op_parallelism_threads = self.sizing.inter_op
        return config

    def _load(self, name: str, version: int, path: str) -> Any:
        """Load one version and run its warmup records; any failure fails the load.

        Then the heap is frozen: TensorFlow leaves about a million Python objects behind, and
        every full collection that walks them stops the server for ~0.2 s, the whole p99 tail
        under load. Frozen objects are skipped by the collector (``gc.freeze``); thawing first
        lets the garbage of versions unloaded since the last load go.
        """
        servable = self._load_and_warm(name, version, path)
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return servable

    def _load_and_warm(self, name: str, version: int, path: str) -> Any:
        from timonel.server.servable import load_servable
        from timonel.server.warmup import replay_warmup
        from timonel.tfserving import read_warmup, warmup_path

        start = time.perf_counter()
        try:
            servable = load_servable(
                name,
                version,
                path,
                session_config=self._session_config(),
                tags=[tag for tag in self.options.saved_model_tags.split(",") if tag],
                check_method_name=self.options.enable_signature_method_name_check,
            )
        except ServingError:
            self.metrics.record(self.metrics.load_attempt_count, 1, path, "fail")
            raise
        self.metrics.record(self.metrics.load_attempt_count, 1, path, "success")
        self.metrics.record(self.metrics.load_latency, (time.perf_counter() - start) * 1e6, path)
        if not self.options.enable_model_warmup:
            return servable
        file = warmup_path(path)
        warm_start = time.perf_counter()
        try:
            records = read_warmup(file)
            if not records:
                log.info("No warmup data file found at %s", file)
                return servable
            count = replay_warmup(servable, records, self.options.num_request_iterations_for_warmup)
        except ServingError as exc:
            servable.close()
            self.metrics.record(
                self.metrics.model_warmup_latency,
                (time.perf_counter() - warm_start) * 1e6,
                path,
                exc.code,
            )
            raise
        self.metrics.record(
            self.metrics.model_warmup_latency, (time.perf_counter() - warm_start) * 1e6, path, "OK"
        )
        self.metrics.record(self.metrics.model_warmup_records_read, count, path, "OK")
        log.info(
            "Finished reading warmup data for model at %s. Number of warmup records read: %d.",
            file,
            count,
        )
        return servable

    # ---- lifecycle -------------------------------------------------------------------------

    def load_models(self) -> None:
        """Configure, load, and wait until every model's latest version serves."""
        try:
            configs = _model_configs(self.options)
            self._session_config()  # a bad session config file fails start-up, not each load
        except SpecError as exc:
            raise ServingError(str(exc), code="INVALID_ARGUMENT") from exc
        self.manager.configure(configs)
        self.manager.start()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            threading.Thread(target=self._watch_config, name="config-poll", daemon=True).start()
        self.manager.wait_until_available()

    def _watch_config(self) -> None:
        from timonel.tfserving import read_models_config
        from timonel.tfserving.models_config import CUSTOM_MODEL_CONFIG

        last: Sequence[Any] | None = None
        while not self._stopping.wait(self.options.model_config_file_poll_wait_seconds):
            # TF Serving's Server::PollFilesystemAndReloadConfig, with its log lines
            try:
                configs = read_models_config(self.options.model_config_file)
            except SpecError as exc:
                if exc.field == CUSTOM_MODEL_CONFIG:  # ServerCore::ReloadConfig refuses it
                    log.error(
                        "PollFilesystemAndReloadConfig failed to ReloadConfig: Cannot transition "
                        "to requested config. It is only legal to transition from one "
                        "ModelConfigList to another."
                    )
                elif exc.field is None:  # the file does not read or parse
                    log.error("Failed to read ModelServerConfig file: %s", exc)
                else:
                    log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc)
                continue
            try:
                if configs != last:
                    self.manager.configure(configs)
                    last = configs
            except TimonelError as exc:
                log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc)

    async def run(self) -> None:
        """Open the ports and serve until ``stop()``; then drain and close them."""
        from timonel.server import grpc_service, rest
        from timonel.server.outbox import Outbox
        from timonel.server.rest_port import RestPort

        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stopping.is_set():
            return
        options = self.options
        grpc_server = None
        rest_server = None
        listener = None
        outbox = Outbox()  # the loop's: both APIs' answers wait for the same handlers
        try:
            grpc_server = grpc_service.make_server(
                self.inference,
                limits=channel_limits(options.grpc_channel_arguments),
                tensor_content=options.enable_serialization_as_tensor_content,
                health=options.enable_grpc_healthcheck_service,
                outbox=outbox,
            )
            tls = self._tls()
            if options.port:
                address = _address(options.host, options.port)
                try:
                    self.grpc_port = await grpc_server.start(options.host, options.port, tls)
                except OSError as exc:
                    raise ServingError(
                        f"Failed to bind gRPC to {address}: {exc.strerror}", code="UNAVAILABLE"
                    ) from exc
                log.info("Running gRPC ModelServer at %s ...", address)
            if options.grpc_socket_path:
                try:
                    await grpc_server.start_unix(options.grpc_socket_path, tls)
                except OSError as exc:
                    raise ServingError(
                        f"Failed to bind gRPC to UNIX socket {options.grpc_socket_path}: "
                        f"{exc.strerror}",
                        code="UNAVAILABLE",
                    ) from exc
                log.info("Running gRPC ModelServer at UNIX socket %s ...", options.grpc_socket_path)
            if options.rest_api_port and options.rest_api_port == options.port:
                log.error(
                    "--rest_api_port %d is the gRPC --port too; REST API not started",
                    options.rest_api_port,
                )
            elif options.rest_api_port:
                api = rest.RestApi(
                    self.inference,
                    self.metrics,
                    max_body_bytes=options.rest_api_max_body_bytes,
                    monitoring_path=self.monitoring_path,
                    timeout_ms=options.rest_api_timeout_in_ms,
                    cors=options.rest_api_enable_cors_support,
                )
                rest_server = RestPort(api, outbox)
                try:
                    listener = await self._loop.create_server(
                        rest_server, options.host, options.rest_api_port, reuse_address=True
                    )
                except OSError as exc:
                    raise ServingError(
                        "Failed to start HTTP Server at "
                        f"{_address(options.host, options.rest_api_port)}: {exc.strerror}",
                        code="UNAVAILABLE",
                    ) from exc
                self.rest_port = listener.sockets[0].getsockname()[1]
                log.info(
                    "Exporting HTTP/REST API at:%s ...", _address(options.host, self.rest_port)
                )
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self.stop)
            flusher = asyncio.ensure_future(self._flush_logs())
            await self._stop_event.wait()
            flusher.cancel()
            log.info("Shutting down: draining in-flight requests")
        finally:
            await self._drain(grpc_server, rest_server, listener)
            flush_access_log()

    def _tls(self) -> ssl.SSLContext | None:
        """The TLS context of ``--ssl_config_file`` (None: plain gRPC), as TF Serving's
        ``BuildServerCredentials``: the server's key and certificate, and with ``client_verify``
        a client certificate signed by ``custom_ca`` required."""
        if not self.options.ssl_config_file:
            return None
        from timonel.tfserving import read_ssl_config

        try:
            config = read_ssl_config(self.options.ssl_config_file)
        except SpecError as exc:
            raise ServingError(str(exc), code="INVALID_ARGUMENT") from exc
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_alpn_protocols(["h2"])
        with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only
            key, cert = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
            with open(key, "w", opener=lambda p, f: os.open(p, f, 0o600)) as file:
                file.write(config.server_key)
            with open(cert, "w") as file:
                file.write(config.server_cert)
            try:
                context.load_cert_chain(cert, key)
            except ssl.SSLError as exc:
                raise ServingError(
                    f"{self.options.ssl_config_file}: server_key and server_cert are not a PEM "
                    f"key and its certificate: {exc}",
                    code="INVALID_ARGUMENT",
                ) from exc
        if config.custom_ca:
            context.load_verify_locations(cadata=config.custom_ca)
        if config.client_verify:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _flush_logs(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.5)
            await loop.run_in_executor(None, flush_access_log)

    async def _drain(self, grpc_server: Any, rest_server: Any, listener: Any) -> None:
        grace = self.options.drain_seconds
        self.inference.runner.drain()
        tasks = []
        if listener is not None:
            listener.close()
            tasks.append(rest_server.shutdown(grace))
        if grpc_server is not None:
            tasks.append(grpc_server.stop(grace))
        await asyncio.gather(*tasks, return_exceptions=True)
        if listener is not None:
            await listener.wait_closed()

    def stop(self) -> None:
        """Begin a graceful shutdown (safe from signal handlers and other threads)."""
        self._stopping.set()
        self.manager.request_stop()
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)

    def close(self) -> None:
        """Unload models and free the runner's threads."""
        self._stopping.set()
        self.inference.runner.close()
        self.manager.stop()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(options: ServerOptions) -> None:
    """Run a TF-Serving-compatible model server until SIGTERM or SIGINT.

    Raises ``ServingError`` when startup fails (a model that will not load, a port in use).
    """
    server = ModelServer(options)
    previous = {
        sig: signal.signal(sig, lambda *_: server.stop()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        try:
            server.load_models()
        except ServingError as exc:
            if exc.code == "CANCELLED":
                return
            raise
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(server.run())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()


def _loop_factory() -> Any:
    """uvloop when it is installed (it halves the event loop's overhead), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
