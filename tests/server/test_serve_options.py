"""tensorflow_model_server's flags beyond ports and models: channel arguments, TLS, the health
service, CORS and tensor_content, each checked against a real ``timonel serve``."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from serverproc import ServerProcess, StartServer
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from timonel.codec.tensor_proto import from_tensor_proto, to_tensor_proto
from timonel.errors import SpecError
from timonel.server.channel_arguments import (
    ConnectionLimits,
    channel_limits,
    parse_channel_arguments,
)

# ---- --grpc_channel_arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("", []),
        ("grpc.max_concurrent_streams=10", [("grpc.max_concurrent_streams", "10")]),
        (" a=1 , b = two ,", [("a", "1"), ("b", "two")]),
        ("a=1,,b=", [("a", "1"), ("b", "")]),
        ("grpc.primary_user_agent=x=y", [("grpc.primary_user_agent", "x=y")]),
    ],
)
def test_channel_arguments_are_comma_separated_key_value_pairs(
    text: str, pairs: list[tuple[str, str]]
) -> None:
    assert parse_channel_arguments(text) == pairs


@pytest.mark.parametrize(
    ("text", "changed"),
    [
        ("grpc.max_concurrent_streams=100", {"max_concurrent_streams": 100}),
        ("grpc.max_connection_age_ms=2000", {"max_connection_age": 2.0}),
        ("grpc.max_connection_age_grace_ms=500", {"max_connection_age_grace": 0.5}),
        ("grpc.max_connection_idle_ms=-1", {"max_connection_idle": None}),
        ("grpc.max_connection_idle_ms=2147483647", {"max_connection_idle": None}),
        ("grpc.server_handshake_timeout_ms=250", {"handshake_timeout": 0.25}),
        ("grpc.server_handshake_timeout_ms=-1", {"handshake_timeout": 2147483.647}),
        ("grpc.keepalive_time_ms=1000,grpc.keepalive_timeout_ms=300",
         {"keepalive_time": 1.0, "keepalive_timeout": 0.3}),
        ("grpc.max_receive_message_length=4096", {"max_receive_message_length": 4096}),
        ("grpc.max_concurrent_streams=5,grpc.max_concurrent_streams=7",
         {"max_concurrent_streams": 7}),
        ("grpc.lb_policy_name=round_robin,grpc.so_reuseport=0", {}),
    ],
)  # fmt: skip
def test_channel_arguments_that_map_onto_the_server_set_its_limits(
    text: str, changed: dict[str, object]
) -> None:
    limits = channel_limits(text)
    defaults = ConnectionLimits()
    for name, value in vars(defaults).items():
        assert getattr(limits, name) == pytest.approx(changed.get(name, value)), name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grpc.max_concurrent_streams", "entry 'grpc.max_concurrent_streams' is not key=value"),
        ("=5", "entry '=5' is not key=value"),
        ("grpc.keepalive_time_ms=soon", "grpc.keepalive_time_ms takes an integer"),
        ("grpc.max_concurrent_streams=0", "grpc.max_concurrent_streams=0: use 1 or more"),
    ],
)
def test_malformed_channel_arguments_are_refused_at_start_up(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        channel_limits(text)


# ---- one server with TLS, the health service, CORS and tensor_content -------------------------


def _self_signed() -> tuple[bytes, bytes]:
    """A key and a certificate for localhost and 127.0.0.1, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The --ssl_config_file of a self-signed certificate, and the certificate."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = _self_signed()
    config = folder / "ssl.config"
    config.write_text(f"server_key: {key.decode()!r}\nserver_cert: {cert.decode()!r}\n")
    return config, cert


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, model_repo: Path, certificate: tuple[Path, bytes]
) -> Iterator[ServerProcess]:
    from serverproc import running

    with running(
        tmp_path_factory.mktemp("serve"),
        "--model_name=hpt",
        f"--model_base_path={model_repo / 'hpt'}",
        f"--ssl_config_file={certificate[0]}",
        "--enable_grpc_healthcheck_service",
        "--rest_api_enable_cors_support",
        "--enable_serialization_as_tensor_content",
    ) as server:
        yield server


def _secure(server: ServerProcess, cert: bytes) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=cert)
    return grpc.secure_channel(f"localhost:{server.grpc_port}", credentials)


def _predict(channel: grpc.Channel) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "hpt"
    request.inputs["x"].CopyFrom(to_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


def test_grpc_over_tls_answers_a_client_that_trusts_the_certificate(
    tls_server: ServerProcess, certificate: tuple[Path, bytes]
) -> None:
    with _secure(tls_server, certificate[1]) as channel:
        reply = _predict(channel)
    assert from_tensor_proto(reply.outputs["y"]).tolist() == [3.5, 4.0, 5.5]


def test_a_plain_text_client_is_not_answered_on_a_tls_port(tls_server: ServerProcess) -> None:
    with tls_server.channel() as channel, pytest.raises(grpc.RpcError) as caught:
        _predict(channel)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tensor_content_carries_the_outputs_when_asked(
    tls_server: ServerProcess, certificate: tuple[Path, bytes]
) -> None:
    with _secure(tls_server, certificate[1]) as channel:
        output = _predict(channel).outputs["y"]
    assert list(output.float_val) == []
    assert output.tensor_content == np.array([3.5, 4.0, 5.5], "<f4").tobytes()


def _health(channel: grpc.Channel, service: str) -> bytes:
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    request = b"\x0a" + bytes([len(service)]) + service.encode() if service else b""
    reply: bytes = check(request, timeout=30)
    return reply


@pytest.mark.parametrize("service", ["", "ModelService", "PredictionService"])
def test_the_health_service_says_serving_for_the_server_and_its_services(
    tls_server: ServerProcess, certificate: tuple[Path, bytes], service: str
) -> None:
    with _secure(tls_server, certificate[1]) as channel:
        # server.cc's names, without the package
        assert _health(channel, service) == b"\x08\x01"  # status: SERVING


def test_the_health_service_does_not_know_other_services(
    tls_server: ServerProcess, certificate: tuple[Path, bytes]
) -> None:
    with _secure(tls_server, certificate[1]) as channel, pytest.raises(grpc.RpcError) as caught:
        _health(channel, "tensorflow.serving.ModelService")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


_CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, GET",
    "access-control-allow-headers": "Content-Type",
}


def test_a_cors_preflight_with_an_origin_is_allowed(tls_server: ServerProcess) -> None:
    reply = httpx.options(
        f"{tls_server.rest}/v1/models/hpt:predict", headers={"Origin": "https://app.example"}
    )
    assert reply.status_code == 200
    assert {k: reply.headers.get(k) for k in _CORS} == _CORS


def test_a_cors_preflight_without_an_origin_is_a_failed_precondition(
    tls_server: ServerProcess,
) -> None:
    reply = httpx.options(f"{tls_server.rest}/v1/models/hpt:predict")
    assert (reply.status_code, reply.content) == (400, b"")
    assert {k: reply.headers.get(k) for k in _CORS} == _CORS


def test_cors_headers_come_with_answers_and_errors(tls_server: ServerProcess) -> None:
    ok = httpx.post(f"{tls_server.rest}/v1/models/hpt:predict", json={"instances": [1.0]})
    missing = httpx.get(f"{tls_server.rest}/v1/models/nope")
    assert (ok.status_code, missing.status_code) == (200, 404)
    for reply in (ok, missing):
        assert {k: reply.headers.get(k) for k in _CORS} == _CORS


def test_without_the_flags_there_are_no_cors_headers_no_health_and_typed_fields(
    server_factory: StartServer, model_repo: Path
) -> None:
    server = server_factory("--model_name=hpt", f"--model_base_path={model_repo / 'hpt'}")
    reply = httpx.post(f"{server.rest}/v1/models/hpt:predict", json={"instances": [1.0]})
    assert "access-control-allow-origin" not in reply.headers
    with server.channel() as channel:
        assert list(_predict(channel).outputs["y"].float_val) == [3.5, 4.0, 5.5]
        with pytest.raises(grpc.RpcError) as caught:
            _health(channel, "")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
