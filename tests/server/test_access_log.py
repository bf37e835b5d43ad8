"""The access log: lines wait for ``flush`` and leave in one write, in order, as JSON lines."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serverproc import StartServer

from timonel.server.access_log import LOGGER, AccessLog, access_log


class _CountingStream(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> Iterator[_CountingStream]:
    stream = _CountingStream()
    logger = logging.getLogger(LOGGER)
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = [AccessLog(logging.StreamHandler(stream))]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield stream
    logger.handlers[:], level, logger.propagate = saved
    logger.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_written_in_one_write_per_flush_as_json_lines(stream: _CountingStream) -> None:
    log = access_log()
    assert log is not None
    for n in range(3):
        log.add({"n": n, "status": "OK"})
    assert stream.getvalue() == ""
    log.flush()
    assert [
        (line["n"], line["status"], line["logger"], line["level"]) for line in _lines(stream)
    ] == [
        (0, "OK", LOGGER, "info"),
        (1, "OK", LOGGER, "info"),
        (2, "OK", LOGGER, "info"),
    ]
    assert all(isinstance(line["ts"], float) for line in _lines(stream))
    assert stream.writes == 1


def test_a_record_logged_the_usual_way_joins_the_same_lines(stream: _CountingStream) -> None:
    log = access_log()
    assert log is not None
    log.add({"n": 0})
    logging.getLogger(LOGGER).info("hello", extra={"fields": {"n": 1}})
    log.close()
    assert [(line["n"], line.get("msg")) for line in _lines(stream)] == [(0, None), (1, "hello")]


def test_the_log_is_off_when_its_logger_takes_no_info_lines(stream: _CountingStream) -> None:
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    assert access_log() is None


@pytest.mark.slow
def test_timonel_serve_writes_a_line_per_request_to_stderr(
    server_factory: StartServer, model_repo: Path
) -> None:
    """Every answered request gets a line, the start-up's readiness probes too: this request's
    is found by its model."""
    server = server_factory(f"--model_base_path={model_repo / 'hpt'}", "--model_name=hpt")
    answer = httpx.post(f"{server.rest}/v1/models/hpt:predict", json={"instances": [1.0]})
    assert answer.status_code == 200
    deadline = time.monotonic() + 30  # a hang guard: lines are written every half second
    while True:
        lines = [
            json.loads(line)
            for line in server.stderr.read_text().splitlines()
            if line.startswith("{") and LOGGER in line and '"model":"hpt"' in line
        ]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [
        {key: line[key] for key in ("level", "method", "model", "proto", "status")}
        for line in lines
    ] == [{"level": "info", "method": "POST", "model": "hpt", "proto": "http", "status": "OK"}]
    assert lines[0]["path"] == "/v1/models/hpt:predict" and lines[0]["latency_ms"] > 0
