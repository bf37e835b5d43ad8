"""``timonel.__all__`` is the public API: it matches the package and shows public paths."""

from __future__ import annotations

import types

import timonel


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(timonel).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    exported = set(timonel.__all__) - {"__version__"}
    assert sorted(timonel.__all__) == list(timonel.__all__)
    assert public == exported


def test_exported_members_report_the_public_module() -> None:
    for name in timonel.__all__:
        member = getattr(timonel, name)
        if isinstance(member, type) or callable(member):
            assert member.__module__ == "timonel", name


def test_importing_timonel_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, timonel; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
