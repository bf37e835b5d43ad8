"""Helpers for tests that drive the local API server through the real ``kubernetes`` client."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes import client
from localcluster import TOKEN

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"

ISVC: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "InferenceService",
    "metadata": {"name": "digits", "labels": {"app": "digits"}},
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": "gs://models/digits/v1"},
        }
    },
}


def isvc(name: str = "digits", **predictor: Any) -> dict[str, Any]:
    """An InferenceService manifest named ``name`` with ``predictor`` fields set on top."""
    body = copy.deepcopy(ISVC)
    body["metadata"]["name"] = name
    body["spec"]["predictor"].update(predictor)
    return body


def api_client(url: str, token: str = TOKEN) -> client.ApiClient:
    config = client.Configuration()
    config.host = url
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(config)


def custom(url: str, token: str = TOKEN) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client(url, token))
