"""``timonel.__all__`` is the public API: it matches the package and shows public paths."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
import typing

import pytest

import timonel


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert sorted(timonel.__all__) == list(timonel.__all__)
    for name in timonel.__all__:
        assert getattr(timonel, name) is not None, name


def test_the_package_exposes_nothing_beyond_all() -> None:
    for name in timonel.__all__:
        getattr(timonel, name)
    public = {
        name
        for name, value in vars(timonel).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(timonel.__all__) - {"__version__"}
    assert set(timonel.__all__) <= set(dir(timonel))


def test_exported_members_report_the_public_module() -> None:
    for name in timonel.__all__:
        member = getattr(timonel, name)
        if isinstance(member, type) or callable(member):
            assert member.__module__ == "timonel", name


def exported_members() -> list[str]:
    return [name for name in timonel.__all__ if name != "__version__"]


@pytest.mark.parametrize("name", exported_members())
def test_type_hints_resolve_after_the_name_is_read_from_timonel(name: str) -> None:
    member = getattr(timonel, name)
    assert member.__module__ == "timonel"
    hints = typing.get_type_hints(member, include_extras=True)
    if isinstance(member, type):
        assert set(inspect.get_annotations(member)) <= set(hints), name
        assert not any(isinstance(hint, str | typing.ForwardRef) for hint in hints.values())


@pytest.mark.parametrize(
    "name", [name for name in exported_members() if isinstance(getattr(timonel, name), type)]
)
def test_the_hints_of_an_exported_class_s_methods_resolve(name: str) -> None:
    for attribute, member in vars(getattr(timonel, name)).items():
        function = getattr(member, "__func__", member)
        if inspect.isfunction(function):
            hints = typing.get_type_hints(function, include_extras=True).values()
            assert not any(isinstance(h, str | typing.ForwardRef) for h in hints), attribute


def test_the_clients_channel_hints_name_grpc_s_channels_which_load_only_then() -> None:
    probe = (
        "import sys, typing, timonel; timonel.Client; timonel.AsyncClient; "
        "print('grpc._cython' in sys.modules); "
        "print(typing.get_type_hints(timonel.Client.__init__)['channel']); "
        "print(typing.get_type_hints(timonel.AsyncClient.__init__)['channel'])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded_at_import, sync_channel, async_channel = out.stdout.splitlines()
    assert loaded_at_import == "False"
    assert sync_channel == "grpc.Channel | None"
    assert async_channel == "grpc.aio._base_channel.Channel | None"


def test_type_hints_name_the_objects_the_module_meant() -> None:
    from timonel.kube.status import TrafficTarget

    hints = typing.get_type_hints(timonel.ServiceStatus)
    assert hints["traffic"] == tuple[TrafficTarget, ...]
    assert typing.get_type_hints(timonel.Status)["details"] == dict[str, typing.Any]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Deploy'"):
        _ = timonel.Deploy  # type: ignore[attr-defined]


def imported_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_timonel_loads_no_heavy_dependency() -> None:
    loaded = imported_after("import timonel")
    assert not {"tensorflow", "numpy", "kubernetes", "httpx", "kfp"} & loaded


def test_rendering_does_not_load_tensorflow_or_kubernetes() -> None:
    loaded = imported_after("import timonel; timonel.render")
    assert not {"tensorflow", "kubernetes", "kfp"} & loaded


def test_type_checking_imports_mirror_the_lazy_exports() -> None:
    import ast

    tree = ast.parse(inspect.getsource(timonel))
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "_TYPE_CHECKING"
    )
    imported = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == timonel._EXPORTS
