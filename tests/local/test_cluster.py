"""``timonel.local.up`` refuses ports it could not use before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from timonel import cli
from timonel.errors import SpecError
from timonel.local import Home, up


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (
            {"api_port": 99999},
            "api_port",
            "--api-port 99999 is out of range: expected a port from 1 to 65535, or 0 for any "
            "free port; pass --api-port with a port in that range, or leave it out to reuse the "
            "last one",
        ),
        (
            {"api_port": -1},
            "api_port",
            "--api-port -1 is out of range: expected a port from 1 to 65535, or 0 for any free "
            "port; pass --api-port with a port in that range, or leave it out to reuse the last "
            "one",
        ),
        (
            {"ingress_port": 65536},
            "ingress_port",
            "--ingress-port 65536 is out of range: expected a port from 1 to 65535; pass "
            "--ingress-port with a port in that range, or leave it out to reuse the last one",
        ),
        (
            {"ingress_port": 0},
            "ingress_port",
            "--ingress-port 0 is out of range: expected a port from 1 to 65535; pass "
            "--ingress-port with a port in that range, or leave it out to reuse the last one",
        ),
    ],
)
def test_a_port_out_of_range_is_refused_before_anything_starts(
    tmp_path: Path, options: dict[str, int], field: str, message: str
) -> None:
    home = Home(tmp_path / "home")
    with pytest.raises(SpecError) as caught:
        up(**options, home=home)
    assert str(caught.value) == message
    assert caught.value.field == field
    assert not home.root.exists()  # no daemon, no log, no settings


def test_the_command_says_it_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMONEL_LOCAL_HOME", str(tmp_path))
    assert cli.main(["local", "up", "--api-port", "99999"]) == cli.EXIT_USER_ERROR
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: --api-port 99999 is out of range: expected a port from 1 to")
    assert "Traceback" not in err and "OverflowError" not in err
