"""Reading and writing TF Serving's text config files, the same way for each kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from timonel.errors import SpecError


def read_config_text(path: str | Path, *, what: str, flag: str) -> tuple[str, str]:
    """The text of the config file at ``path`` and its name for messages; a SpecError naming
    ``what`` the file is and the ``flag`` that points at it when it cannot be read."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8"), str(file)
    except OSError as exc:
        raise SpecError(
            f"cannot read the {what} file {file}: {exc.strerror}; check the {flag} path"
        ) from exc


def write_config_text(path: str | Path, text: str) -> Path:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    return file


def parse_config_text(text: str, message: Any, *, source: str, fix: str) -> None:
    """Read text ``text`` into ``message`` with protobuf's ``text_format``; a file that does not
    parse fails with the words TF Serving logs (``Error parsing text-format <type>: <line>:<col>
    : <what>``, which scripts search for), the file's name, and ``fix``."""
    from google.protobuf import text_format

    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise SpecError(
            f"Error parsing text-format {message.DESCRIPTOR.full_name}: "
            f"{str(exc).rstrip('.')}. Invalid protobuf file: '{source}'; {fix}"
        ) from exc
