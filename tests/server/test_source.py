"""Version discovery: numeric folders as TF Serving, plus published Timonel releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from timonel.errors import ServingError
from timonel.server.source import Entry, discover_versions, versions_from_entries


def test_numeric_folders_and_published_releases() -> None:
    entries = [
        Entry("1", True),
        Entry("00000012", True),
        Entry("v3", True, has_manifest=True),
        Entry("v4", True, has_manifest=False),  # still uploading: not published
        Entry("v12", True, has_manifest=True),  # same number as a plain folder: the folder wins
        Entry("7", False),  # a file
        Entry("tmp", True),
    ]
    assert versions_from_entries("/m", entries) == {1: "/m/1", 12: "/m/00000012", 3: "/m/v3/3"}


def test_discover_reads_a_local_folder_and_file_uris(tmp_path: Path) -> None:
    (tmp_path / "2").mkdir()
    (tmp_path / "v5" / "5").mkdir(parents=True)
    (tmp_path / "v5" / "timonel.json").write_text("{}")
    expected = {2: f"{tmp_path}/2", 5: f"{tmp_path}/v5/5"}
    assert discover_versions("m", str(tmp_path)) == expected
    assert discover_versions("m", f"file://{tmp_path}") == expected


def test_a_missing_base_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ServingError) as caught:
        discover_versions("m", str(tmp_path / "nope"))
    assert caught.value.code == "NOT_FOUND"
    assert str(caught.value).startswith(f"Could not find base path {tmp_path}/nope for servable m")
