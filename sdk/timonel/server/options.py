"""The model server's settings: tensorflow_model_server's flags, by the same names.

Defaults are those of the tensorflow/serving Docker image (gRPC on 8500, REST on 8501), except
that the server listens on 127.0.0.1 unless ``host`` says otherwise. Light: no TensorFlow import.
"""

from __future__ import annotations

from dataclasses import dataclass

from timonel.errors import SpecError
from timonel.server.channel_arguments import channel_limits

#: Largest REST request body accepted by default (a 413 answers anything larger).
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """What ``timonel serve`` (and ``timonel.serve``) runs with; see TF Serving's ``main.cc``.

    ``port`` 0 turns gRPC off and ``rest_api_port`` 0 turns REST off, as in TF Serving.
    ``model_config_file`` wins over ``model_name``/``model_base_path`` when both are given.
    One of ``port`` and ``grpc_socket_path`` must be set (TF Serving's ``server.cc``).
    """

    port: int = 8500
    rest_api_port: int = 8501
    host: str = "127.0.0.1"
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    #: A REST call's run timeout (gRPC calls take the client's deadline, as in TF Serving);
    #: 0 means none.
    rest_api_timeout_in_ms: int = 30000
    allow_version_labels_for_unavailable_models: bool = False
    enable_model_warmup: bool = True
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    rest_api_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    tensorflow_intra_op_parallelism: int = 0
    #: 0 (TF Serving's default): a shared pool of ops, which calls with a timeout need so that
    #: TensorFlow can stop them; calls without one still run in their own thread
    #: (``Servable.run``). -1 runs every call in its own thread, where no timeout is enforced.
    tensorflow_inter_op_parallelism: int = 0
    #: Seconds a SIGTERM waits for in-flight requests before the server exits anyway.
    drain_seconds: float = 30.0
    #: gRPC on a Unix socket too (or only, with ``port`` 0), on the same server.
    grpc_socket_path: str = ""
    #: ``key=value,...`` as tensorflow_model_server takes them (``channel_arguments``).
    grpc_channel_arguments: str = ""
    #: Check a signature's method_name against the API called (off by default, as in TF Serving,
    #: so native TF2 SavedModels, whose signatures all say predict, serve Classify and Regress).
    enable_signature_method_name_check: bool = False
    #: Comma-separated tags of the MetaGraph to load.
    saved_model_tags: str = "serve"
    #: Text ``tensorflow.ConfigProto`` for every session; the parallelism and GPU-fraction flags
    #: override its fields, as in TF Serving.
    tensorflow_session_config_file: str = ""
    #: Sets both intra- and inter-op parallelism when neither of those flags is set.
    tensorflow_session_parallelism: int = 0
    per_process_gpu_memory_fraction: float = 0.0
    #: Text ``tensorflow.serving.SSLConfig``: gRPC over TLS (REST stays plain, as in TF Serving).
    ssl_config_file: str = ""
    #: Text ``PlatformConfigMap``; when set, the batching flags are ignored, as in TF Serving.
    platform_config_file: str = ""
    #: Serve ``grpc.health.v1.Health`` with ModelService and PredictionService SERVING.
    enable_grpc_healthcheck_service: bool = False
    #: Predict responses carry ``tensor_content`` instead of the typed ``*_val`` fields.
    enable_serialization_as_tensor_content: bool = False
    #: Times each warmup record runs (0 or 1: once).
    num_request_iterations_for_warmup: int = 0
    #: Access-Control-Allow-Origin and friends on every REST answer.
    rest_api_enable_cors_support: bool = False

    def __post_init__(self) -> None:
        # TF Serving's own order (model_servers/server.cc, Server::BuildAndStart)
        if self.port == 0 and not self.grpc_socket_path:
            raise SpecError(
                "At least one of server_options.grpc_port or server_options.grpc_socket_path "
                "must be set.",
                field="port",
            )
        if not self.model_base_path and not self.model_config_file:
            raise SpecError(
                "Both server_options.model_base_path and server_options.model_config_file are "
                "empty!",
                field="model_base_path",
            )
        if self.batching_parameters_file and not self.enable_batching:
            raise SpecError(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true.",
                field="batching_parameters_file",
            )
        if (
            self.tensorflow_intra_op_parallelism > 0
            and self.tensorflow_inter_op_parallelism > 0
            and self.tensorflow_session_parallelism > 0
        ):
            raise SpecError(
                "Either configure server_options.tensorflow_session_parallelism or "
                "(server_options.tensorflow_intra_op_parallelism, "
                "server_options.tensorflow_inter_op_parallelism) separately. You cannot "
                "configure all.",
                field="tensorflow_session_parallelism",
            )
        channel_limits(self.grpc_channel_arguments)  # a malformed list fails at start-up
        for name in ("port", "rest_api_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise SpecError(f"--{name}={value} is not a TCP port; use 0 to 65535", field=name)
        if self.rest_api_max_body_bytes < 1:
            raise SpecError(
                "--rest_api_max_body_bytes must be 1 or more", field="rest_api_max_body_bytes"
            )
