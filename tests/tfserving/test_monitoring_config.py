"""The monitoring config file: Prometheus on/off and its path, with TF Serving's default path."""

from __future__ import annotations

from pathlib import Path

import pytest

from timonel.errors import SpecError
from timonel.tfserving import (
    DEFAULT_PROMETHEUS_PATH,
    MonitoringConfig,
    parse_monitoring_config,
    read_monitoring_config,
    render_monitoring_config,
    write_monitoring_config,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prometheus_config { enable: true }", MonitoringConfig(True, DEFAULT_PROMETHEUS_PATH)),
        (
            'prometheus_config { enable: true, path: "/metrics" }',
            MonitoringConfig(True, "/metrics"),
        ),
        ("", MonitoringConfig(False, DEFAULT_PROMETHEUS_PATH)),
        ("# a comment only\n", MonitoringConfig(False, DEFAULT_PROMETHEUS_PATH)),
    ],
)
def test_parse(text: str, expected: MonitoringConfig) -> None:
    assert parse_monitoring_config(text) == expected


def test_render_is_tf_servings_text() -> None:
    assert render_monitoring_config(MonitoringConfig()) == (
        'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    config = MonitoringConfig(prometheus_enabled=True, prometheus_path="/m")
    assert (
        read_monitoring_config(write_monitoring_config(tmp_path / "mon.config", config)) == config
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prometheus { enable: true }", "monitoring.config is not a text MonitoringConfig"),
        ('prometheus_config { path: "metrics" }', "does not start with '/'"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_monitoring_config(text)
