"""What every benchmark does first: answer ``--help`` with its docstring instead of starting a run
(a run takes minutes and rewrites its section of ``bench/README.md``)."""

from __future__ import annotations

import argparse
import sys


def parse_command_line(script: str, doc: str | None) -> None:
    """``--help`` prints ``doc`` and exits; any other argument is refused, as the benchmarks
    take their settings from environment variables named in ``doc``."""
    argparse.ArgumentParser(
        prog=f"python bench/{script}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(sys.argv[1:])
