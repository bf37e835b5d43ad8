"""TensorFlow's C++ start-up lines, kept off the terminal of CLI commands.

Importing TensorFlow, and the first look at its devices, write lines such as
``E0000 ... failed call to cuInit: ... CUDA error`` to file descriptor 2 from C++ (absl's log,
which ``TF_CPP_MIN_LOG_LEVEL`` does not silence). On a machine without a GPU they read as a failure
of the command. So the first ``import tensorflow`` of a command runs, together with the device
discovery that logs cuInit, with descriptor 2 pointed at ``/dev/null``; Python's ``sys.stderr``
is not touched, and nothing else is captured after that moment. ``timonel serve`` keeps them (its
log is TF Serving's), and so does ``--debug``.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType


@contextlib.contextmanager
def _descriptor_2_discarded() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``tensorflow`` as the other finders do, and loads it with descriptor 2 discarded."""

    def __init__(self) -> None:
        self._loader: importlib.abc.Loader | None = None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders from here on
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        assert self._loader is not None
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        assert self._loader is not None
        with _descriptor_2_discarded():
            self._loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # where cuInit is called, and logged


def quiet_tensorflow_start_up() -> None:
    """Keep TensorFlow's start-up lines off the terminal, if it has not been imported yet."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietImport())
