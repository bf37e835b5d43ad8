"""A TensorFlow-Serving-compatible model server (``timonel serve``).

Modules, one concept each: ``servable`` (one loaded SavedModel version), ``source`` and
``policy`` (which versions exist and which to serve), ``manager`` (the lifecycle), ``inference``
(the request path), ``runner`` and ``batching`` (how calls reach TensorFlow), ``rest`` and
``grpc_service`` (the two APIs), ``grpc_server`` (gRPC's HTTP/2 wire for unary calls),
``metrics``, ``warmup``, ``options`` and ``app`` (the process). JSON and TensorProto ⇄ numpy
(``timonel.codec.json_tensor``, ``timonel.codec.tensor_proto``) and the status codes' HTTP statuses
(``timonel.codec.status``) are shared with the client.

Only ``ServerOptions`` and ``serve`` are public (re-exported by ``timonel``); importing this package
does not import TensorFlow.
"""

from timonel.server.options import ServerOptions


def serve(options: ServerOptions) -> None:
    """Run the model server until SIGTERM/SIGINT; raises ``ServingError`` if startup fails."""
    from timonel.server.app import serve as run

    run(options)


__all__ = ["ServerOptions", "serve"]
