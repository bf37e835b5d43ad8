"""The SSL config file (``--ssl_config_file``): gRPC over TLS.

Text ``tensorflow.serving.SSLConfig`` (``config/ssl_config.proto``): the server's PEM key and
certificate, an optional CA for client certificates, and whether a client must present one
(``model_servers/server.cc``, ``BuildServerCredentials``). The message comes from
``timonel.tfserving._protos`` because the tensorflow-serving-api wheel does not ship it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from timonel.errors import SpecError
from timonel.tfserving._files import parse_config_text, read_config_text
from timonel.tfserving._protos import message_class


@dataclass(frozen=True)
class SslConfig:
    """PEM texts, as the file carries them."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


def parse_ssl_config(text: str, *, source: str = "ssl.config") -> SslConfig:
    proto = message_class("SSLConfig")()
    parse_config_text(
        text, proto, source=source, fix="write server_key: '<PEM>' server_cert: '<PEM>'"
    )
    if not proto.server_key or not proto.server_cert:
        raise SpecError(
            f"{source} sets no server_key or no server_cert; TLS needs both, as PEM text"
        )
    return SslConfig(proto.server_key, proto.server_cert, proto.custom_ca, proto.client_verify)


def read_ssl_config(path: str | Path) -> SslConfig:
    text, source = read_config_text(path, what="SSL config", flag="--ssl_config_file")
    return parse_ssl_config(text, source=source)
