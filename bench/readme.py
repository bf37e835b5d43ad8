"""The one thing every benchmark does with ``bench/README.md``: replace its own section."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(script: str, section: str, readme: Path = README) -> None:
    """Put ``section`` between ``script``'s begin/end markers, appending them the first time."""
    begin, end = f"<!-- {script}: begin -->", f"<!-- {script}: end -->"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n\n"
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)
