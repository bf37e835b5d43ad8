"""Prediction client for TF Serving's REST and gRPC APIs: ``Client`` and ``AsyncClient``.

Works against ``timonel serve``, TensorFlow Serving and KServe's TF Serving runtime alike::

    with Client("http://127.0.0.1:8501") as client:
        client.predict("half", np.array([1.0, 2.0]))  # {"y": array([2.5, 3.], dtype=float32)}

gRPC (``grpc://host:8500``) needs the ``tf`` extra (TensorFlow's protos and grpcio); REST only
httpx and numpy.
"""

from timonel.client._client import AsyncClient, Client
from timonel.client._retry import Retry
from timonel.client._types import ModelMetadata, ModelVersionStatus

__all__ = [
    "AsyncClient",
    "Client",
    "ModelMetadata",
    "ModelVersionStatus",
    "Retry",
]
