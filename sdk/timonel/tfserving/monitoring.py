"""The monitoring config file (``--monitoring_config_file``): Prometheus metrics on the REST port.

Text ``tensorflow.serving.MonitoringConfig``; the message comes from ``timonel.tfserving._protos``
because the tensorflow-serving-api wheel does not ship it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from timonel.errors import SpecError
from timonel.tfserving._files import read_config_text, write_config_text
from timonel.tfserving._protos import message_class

#: Where TF Serving serves metrics when the config leaves ``path`` empty
#: (``PrometheusExporter::kPrometheusPath``).
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


@dataclass(frozen=True)
class MonitoringConfig:
    """Whether the model server exposes Prometheus metrics, and at which REST path."""

    prometheus_enabled: bool = True
    prometheus_path: str = DEFAULT_PROMETHEUS_PATH

    def __post_init__(self) -> None:
        if not self.prometheus_path.startswith("/"):
            raise SpecError(
                f"prometheus_config.path {self.prometheus_path!r} does not start with '/'; "
                f"give a URL path such as {DEFAULT_PROMETHEUS_PATH}",
                field="prometheus_config.path",
            )


def render_monitoring_config(config: MonitoringConfig) -> str:
    """The text of a monitoring config file."""
    from google.protobuf import text_format

    proto = message_class("MonitoringConfig")()
    proto.prometheus_config.enable = config.prometheus_enabled
    proto.prometheus_config.path = config.prometheus_path
    return str(text_format.MessageToString(proto))


def parse_monitoring_config(text: str, *, source: str = "monitoring.config") -> MonitoringConfig:
    """Read a text ``MonitoringConfig``; an empty path means TF Serving's default path."""
    from google.protobuf import text_format

    proto = message_class("MonitoringConfig")()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise SpecError(
            f"{source} is not a text MonitoringConfig: {exc}; write it as "
            f'prometheus_config {{ enable: true path: "{DEFAULT_PROMETHEUS_PATH}" }}'
        ) from exc
    prometheus = proto.prometheus_config
    return MonitoringConfig(
        prometheus_enabled=prometheus.enable,
        prometheus_path=prometheus.path or DEFAULT_PROMETHEUS_PATH,
    )


def read_monitoring_config(path: str | Path) -> MonitoringConfig:
    text, source = read_config_text(path, what="monitoring config", flag="--monitoring_config_file")
    return parse_monitoring_config(text, source=source)


def write_monitoring_config(path: str | Path, config: MonitoringConfig) -> Path:
    return write_config_text(path, render_monitoring_config(config))
