"""``timonel predict``: send a TF Serving REST predict body to a model server, print the reply.

Without ``--url`` the server is the InferenceService NAME, found from its status through the
cluster's ingress (``Client.for_service``), on ``timonel local`` as on GKE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import typer

from timonel.cli.cluster import _CONTEXT, _NAMESPACE, _connect
from timonel.errors import SpecError


def _read_body(text: str) -> dict[str, Any]:
    source = "--json"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"--json @{path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(
                f"cannot read {path} for --json: {exc.strerror or exc}; give an existing file "
                "after '@' or the JSON itself",
                field="json",
            ) from exc
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise SpecError(
            f"{source} is not valid JSON ({exc}); pass an object like "
            '\'{"instances": [[1.0, 2.0]]}\' or \'{"inputs": {"x": [1.0]}}\'',
            field="json",
        ) from exc
    if not isinstance(body, dict):
        raise SpecError(
            f"{source} must be a JSON object with 'instances' or 'inputs', got "
            f"{type(body).__name__}",
            field="json",
        )
    return body


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        name: str = typer.Argument(..., help="Model name (the InferenceService's name on KServe)."),
        url: str | None = typer.Option(
            None,
            "--url",
            help="Server URL: http://HOST:8501 (REST) or HOST:8500 with --grpc. Default: the "
            "InferenceService NAME's status.url, through the ingress gateway.",
        ),
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
        gateway: str | None = typer.Option(
            None,
            "--gateway",
            help="Ingress gateway address http://HOST:PORT (default: timonel local's ingress, or "
            "istio-system/istio-ingressgateway's LoadBalancer address).",
        ),
        body: str = typer.Option(
            ...,
            "--json",
            help='Predict body, TF Serving REST format ({"instances": ...} or {"inputs": ...}); '
            "@FILE reads it from a file.",
        ),
        grpc: bool = typer.Option(False, "--grpc", help="Use the gRPC PredictionService."),
        host_header: str | None = typer.Option(
            None,
            "--host-header",
            help="Host header / gRPC :authority for KServe's ingress (NAME.NAMESPACE.example.com).",
        ),
        signature: str | None = typer.Option(None, "--signature", help="Signature name."),
        version: int | None = typer.Option(None, "--version", help="Model version to call."),
        label: str | None = typer.Option(None, "--label", help="Version label to call."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each try."),
    ) -> None:
        """Send one predict request and print the server's JSON reply (also over gRPC)."""
        from timonel.cli import stdout
        from timonel.client import Client

        request = _read_body(body)
        protocol: Literal["grpc"] | None = "grpc" if grpc else None
        if url is None:
            with _connect(context, namespace) as cluster:
                client = Client.for_service(
                    name, cluster=cluster, gateway=gateway, protocol=protocol, timeout=timeout
                )
        else:
            client = Client(url, protocol=protocol, host=host_header, timeout=timeout)
        with client:
            reply = client.predict_json(
                name, request, signature=signature, version=version, label=label
            )
        stdout.print_json(data=reply)
