"""TF Serving's own files, built and read with its protos: ``models.config``, the monitoring and
batching parameter files, the SSL config, and warmup records.

Protobuf, tensorflow-serving-api and TensorFlow are imported inside the functions that need
them, so importing this package stays light.
"""

from timonel.tfserving.batching import (
    BatchingParameters,
    format_batching_parameters,
    parse_batching_parameters,
    read_batching_parameters,
    write_batching_parameters,
)
from timonel.tfserving.models_config import (
    TENSORFLOW_PLATFORM,
    ModelConfig,
    VersionPolicy,
    parse_models_config,
    read_models_config,
    render_models_config,
    write_models_config,
)
from timonel.tfserving.monitoring import (
    DEFAULT_PROMETHEUS_PATH,
    MonitoringConfig,
    parse_monitoring_config,
    read_monitoring_config,
    render_monitoring_config,
    write_monitoring_config,
)
from timonel.tfserving.ssl_config import SslConfig, parse_ssl_config, read_ssl_config
from timonel.tfserving.warmup import (
    MAX_WARMUP_RECORDS,
    WARMUP_FILENAME,
    WARMUP_RELPATH,
    predict_requests_from_json,
    prediction_log,
    read_warmup,
    synthesize_predict_requests,
    warmup_path,
    write_warmup,
)

__all__ = [
    "DEFAULT_PROMETHEUS_PATH",
    "MAX_WARMUP_RECORDS",
    "TENSORFLOW_PLATFORM",
    "WARMUP_FILENAME",
    "WARMUP_RELPATH",
    "BatchingParameters",
    "ModelConfig",
    "MonitoringConfig",
    "SslConfig",
    "VersionPolicy",
    "format_batching_parameters",
    "parse_batching_parameters",
    "parse_models_config",
    "parse_monitoring_config",
    "parse_ssl_config",
    "predict_requests_from_json",
    "prediction_log",
    "read_batching_parameters",
    "read_models_config",
    "read_monitoring_config",
    "read_ssl_config",
    "read_warmup",
    "render_models_config",
    "render_monitoring_config",
    "synthesize_predict_requests",
    "warmup_path",
    "write_batching_parameters",
    "write_models_config",
    "write_monitoring_config",
    "write_warmup",
]
