"""REST routing as TF Serving's http_rest_api_handler.cc matches paths (pure)."""

from __future__ import annotations

import pytest

from timonel.server.rest import Route, route


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/models/m:predict", Route("predict", "m")),
        ("POST", "/V1/Models/m/Versions/3:classify", Route("classify", "m", "3")),
        ("POST", "/v1/models/m/labels/stable:regress", Route("regress", "m", None, "stable")),
        ("POST", "/v1/models/my%20model:predict", Route("predict", "my model")),
        ("GET", "/v1/models/m", Route("status", "m")),
        ("GET", "/v1/models/m/versions/2/metadata", Route("metadata", "m", "2")),
        ("GET", "/v1/models/m/labels/canary", Route("status", "m", None, "canary")),
        ("GET", "/v1/models", Route("status", "")),
        ("POST", "/v1/models/m:PREDICT", None),
        ("GET", "/v1/models/m:predict", None),
        ("PUT", "/v1/models/m", None),
        ("GET", "/v1/models/m/version/50", None),
        ("GET", "/v1/models/m/versions/HELLO", None),
        ("GET", "/v1/models/m/versions/1/labels/x", None),
        ("POST", "/v1/models/m/metadata", None),
    ],
)
def test_route(method: str, path: str, expected: Route | None) -> None:
    assert route(method, path) == expected
