"""Release URIs name their model and version."""

from __future__ import annotations

import pytest

from timonel.releases.layout import release_uri, split_release_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://b/repo/m/v3", ("gs://b/repo/m", 3)),
        ("/srv/repo/m/v12/", ("/srv/repo/m", 12)),
        ("s3://b/m/3", None),
        ("v3", None),
    ],
)
def test_split_release_uri(uri: str, expected: tuple[str, int] | None) -> None:
    assert split_release_uri(uri) == expected


def test_split_inverts_release_uri() -> None:
    assert split_release_uri(release_uri("gs://b/r", "m", 7)) == ("gs://b/r/m", 7)
