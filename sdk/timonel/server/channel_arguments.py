"""``--grpc_channel_arguments``: gRPC's server channel arguments, as far as this server has them.

tensorflow_model_server splits the flag on ``,`` and each entry on ``=``, and hands every pair to
grpc's ``ServerBuilder::AddChannelArgument`` (as an integer when the value is one), where grpc keeps
what it knows and logs the rest (``model_servers/server.cc``, ``parseGrpcChannelArgs``). The
arguments that govern a connection's lifetime and load map onto ``timonel.server.grpc_server``
here; the others (load balancing, reuse of the address, which this server always allows...) are
accepted and ignored, as grpc ignores arguments that mean nothing to a server. A value that is not
an integer where grpc expects one is refused at start-up rather than dropped.

The limits that protect the server default to finite values (grpc's own defaults for
``grpc.max_concurrent_streams`` and ``grpc.max_connection_idle_ms`` are unlimited): a connection
that never sends its preface, or opens no call for long, or holds many streams, costs memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from timonel.errors import SpecError

log = logging.getLogger("timonel.server")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one gRPC connection may do; times in seconds, ``None`` for no limit."""

    #: SETTINGS_MAX_CONCURRENT_STREAMS: streams past it are refused (REFUSED_STREAM).
    max_concurrent_streams: int = 1024
    #: After this age a connection is sent GOAWAY; its calls in flight finish.
    max_connection_age: float | None = None
    #: ... and after this much longer it is closed whatever is still running.
    max_connection_age_grace: float | None = None
    #: A connection with no call open for this long is sent GOAWAY and closed.
    max_connection_idle: float | None = 300.0
    #: A connection that has not sent the HTTP/2 preface by then is closed.
    handshake_timeout: float = 10.0
    #: PING a connection that has sent nothing for this long (None: never) ...
    keepalive_time: float | None = None
    #: ... and close it when the PING is not acknowledged within this.
    keepalive_timeout: float = 20.0
    #: Largest request message accepted (TF Serving sets INT_MAX).
    max_receive_message_length: int = 2**31 - 1
    #: Bytes of answers a connection may hold that its peer has not taken yet; past it, calls
    #: are answered RESOURCE_EXHAUSTED instead of queued.
    max_pending_bytes: int = 64 * 1024 * 1024


#: grpc's argument names (grpc/impl/channel_arg_names.h) → field and unit (1e-3: milliseconds)
_MAPPED: dict[str, tuple[str, float]] = {
    "grpc.max_concurrent_streams": ("max_concurrent_streams", 1),
    "grpc.max_connection_age_ms": ("max_connection_age", 1e-3),
    "grpc.max_connection_age_grace_ms": ("max_connection_age_grace", 1e-3),
    "grpc.max_connection_idle_ms": ("max_connection_idle", 1e-3),
    "grpc.server_handshake_timeout_ms": ("handshake_timeout", 1e-3),
    "grpc.keepalive_time_ms": ("keepalive_time", 1e-3),
    "grpc.keepalive_timeout_ms": ("keepalive_timeout", 1e-3),
    "grpc.max_receive_message_length": ("max_receive_message_length", 1),
}
_INT32_MAX = 2**31 - 1


def parse_channel_arguments(text: str) -> list[tuple[str, str]]:
    """``key=value`` pairs of the flag, in order (empty entries skipped)."""
    pairs = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise SpecError(
                f"--grpc_channel_arguments entry {entry!r} is not key=value; write them as "
                "grpc.max_connection_age_ms=2000,grpc.max_concurrent_streams=100",
                field="grpc_channel_arguments",
            )
        pairs.append((key.strip(), value.strip()))
    return pairs


def channel_limits(text: str) -> ConnectionLimits:
    """The connection limits ``--grpc_channel_arguments`` asks for; later entries win, as in
    grpc. Negative times and INT_MAX mean no limit, as grpc reads them."""
    changes: dict[str, Any] = {}
    for key, value in parse_channel_arguments(text):
        mapped = _MAPPED.get(key)
        if mapped is None:
            log.info("gRPC channel argument %s=%s has no effect on this server", key, value)
            continue
        name, unit = mapped
        try:
            number = int(value)
        except ValueError:
            raise SpecError(
                f"--grpc_channel_arguments {key}={value}: {key} takes an integer",
                field="grpc_channel_arguments",
            ) from None
        if unit == 1:
            if number < 1:
                raise SpecError(
                    f"--grpc_channel_arguments {key}={value}: use 1 or more",
                    field="grpc_channel_arguments",
                )
            changes[name] = number
        else:
            seconds = None if number < 0 or number >= _INT32_MAX else number * unit
            if seconds is None and name in ("handshake_timeout", "keepalive_timeout"):
                seconds = float(_INT32_MAX) * unit
            changes[name] = seconds
    return replace(ConnectionLimits(), **changes)
