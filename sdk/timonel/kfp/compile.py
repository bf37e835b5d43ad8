"""Compile the components to ``components/<name>/component.yaml`` and each pipeline in
``pipelines/`` to YAML beside it (``python -m timonel.kfp.compile ROOT``, run by ``make
components``). The output depends only on the code and ``COMPONENT_IMAGE``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from timonel.errors import SpecError

#: The components, by the folder name each is compiled to.
COMPONENT_NAMES = (
    "package_model",
    "validate_model",
    "render_inference_service",
    "deploy_inference_service",
    "promote",
    "rollback",
    "smoke_test",
    "progressive_rollout",
)


def compile_components(out_dir: Path) -> list[Path]:
    """Write every component's spec; returns the files written."""
    from kfp import compiler

    from timonel.kfp import components

    written = []
    for name in COMPONENT_NAMES:
        path = out_dir / name / "component.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(getattr(components, name), str(path))
        written.append(path)
    return written


def find_pipeline(name: str, *, root: Path) -> Path:
    """A pipeline's file: ``name`` as a path, or ``<root>/pipelines/<name>.py``."""
    candidates = [Path(name), root / "pipelines" / f"{name}.py"]
    for path in candidates:
        if path.suffix == ".py" and path.is_file():
            return path
    known = sorted(p.stem for p in (root / "pipelines").glob("*.py"))
    raise SpecError(
        f"no pipeline {name!r}: expected a .py file or one of {', '.join(known) or 'none'} "
        f"in {root / 'pipelines'}"
    )


def load_pipeline(path: Path) -> Any:
    """The ``@dsl.pipeline`` function a file defines under the file's own name."""
    spec = importlib.util.spec_from_file_location(f"timonel_pipeline_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: cannot be imported as Python; give a pipeline's .py file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pipeline = getattr(module, path.stem, None)
    if pipeline is None:
        raise SpecError(
            f"{path} defines no pipeline named {path.stem}; name the @dsl.pipeline function "
            "after its file"
        )
    return pipeline


def compile_pipeline(path: Path, output: Path | None = None) -> Path:
    """Compile the pipeline in ``path`` to ``output`` (default: the .yaml beside it)."""
    from kfp import compiler

    target = output or path.with_suffix(".yaml")
    compiler.Compiler().compile(load_pipeline(path), str(target))
    return target


def main(argv: list[str] | None = None) -> None:
    root = Path((argv if argv is not None else sys.argv[1:] or ["."])[0])
    for written in compile_components(root / "components"):
        print(written)
    for path in sorted((root / "pipelines").glob("*.py")):
        print(compile_pipeline(path))


if __name__ == "__main__":
    main()
