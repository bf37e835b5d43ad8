"""The import graph of sdk/timonel: no cycle between modules, and a pure core that reaches no I/O.

The graph is read from each module's AST: the imports it runs when it is imported (module level,
outside ``if TYPE_CHECKING:``); imports inside functions are the deliberate late ones and do not
count. The core (spec, signatures, KServe's vocabulary, admission and render, gke, codec) is then
imported for real in a fresh interpreter, to catch an I/O library a third-party import drags in.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sdk" / "timonel"

#: Libraries that talk to the network, storage, processes or the cluster.
IO_LIBRARIES = frozenset(
    {
        "aiohttp",
        "boto3",
        "botocore",
        "fsspec",
        "gcsfs",
        "google.api_core",
        "google.auth",
        "google.cloud",
        "grpc",
        "http",
        "httpx",
        "kubernetes",
        "requests",
        "s3fs",
        "socket",
        "subprocess",
        "tensorflow",
        "urllib3",
    }
)
#: The standard library loads these itself (``email.utils`` imports socket for the
#: ``importlib.metadata`` that pydantic reads its plugins with; ``platform`` runs subprocess),
#: so only the static graph can tell whether our code asked for them.
STDLIB_IO = frozenset({"http", "socket", "subprocess"})

#: TensorProto needs TensorFlow's generated protos, which only come with TensorFlow. Importing it
#: does no I/O, but it is heavy and loads much else (requests, grpc); only this module may.
ALLOWED = {"timonel.codec.tensor_proto": frozenset({"tensorflow"})}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
CORE = sorted(
    name
    for name in MODULES
    if name in {"timonel.spec", "timonel.signatures"}
    or name in {"timonel.kserve.vocabulary", "timonel.kserve.admission", "timonel.kserve.render"}
    or name.startswith(("timonel.gke.", "timonel.codec."))
)


def _runs_at_import(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements executed when the module is imported."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def imports_of(name: str) -> set[str]:
    """Every module (ours by full name, others by full dotted name) ``name`` imports at load."""
    is_package = MODULES[name].name == "__init__.py"
    targets: set[str] = set()
    for node in _runs_at_import(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = name.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, base] if base else anchor)
        # ``from package import submodule`` needs only the submodule (its package is loaded
        # first in any case); any other name is read from ``base`` itself.
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in MODULES else base)
    return targets


GRAPH = {name: {t for t in imports_of(name) if t in MODULES and t != name} for name in MODULES}


def test_the_graph_follows_absolute_relative_and_submodule_imports() -> None:
    assert len(GRAPH) > 50
    assert GRAPH["timonel.kube.rollout"] >= {"timonel.kserve.render", "timonel.kube.client"}
    assert "timonel.spec" not in GRAPH["timonel.kserve.manifests"]  # imported late, on purpose


def test_no_modules_import_one_another_in_a_cycle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        pytest.fail(f"import cycle: {cycle}; move the shared part into a module both can import")


def _reach(name: str) -> set[str]:
    """``name`` and every module of ours it imports at load, transitively."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(GRAPH[current])
    return seen


def _is_io(module: str, allowed: frozenset[str]) -> bool:
    return any(
        (module == lib or module.startswith(f"{lib}.")) and lib not in allowed
        for lib in IO_LIBRARIES
    )


@pytest.mark.parametrize("name", CORE)
def test_the_core_module_and_ours_it_imports_ask_for_no_io(name: str) -> None:
    allowed = ALLOWED.get(name, frozenset())
    asked = {
        f"{ours} imports {target}"
        for ours in sorted(_reach(name))
        for target in imports_of(ours)
        if _is_io(target, allowed)
    }
    assert not asked, f"{name} reaches I/O at import: {sorted(asked)}"


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in ALLOWED else n for n in CORE],
)
def test_importing_the_core_module_loads_no_io_library(name: str) -> None:
    # What the interpreter loads at start (site's namespace packages) and the allowed libraries
    # load themselves are the baseline; what the module adds to it is what counts.
    allowed = ALLOWED.get(name, frozenset())
    probe = (
        "import importlib, json, sys\n"
        f"for library in {sorted(allowed)!r}: importlib.import_module(library)\n"
        "before = set(sys.modules)\n"
        f"importlib.import_module({name!r})\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = [m for m in json.loads(result.stdout) if _is_io(m, allowed | STDLIB_IO)]
    roots = sorted({m.split(".")[0] for m in loaded})
    assert not roots, f"importing {name} loads {roots}; import them where they are used"
