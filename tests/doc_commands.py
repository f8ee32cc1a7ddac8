"""The commands the README and the notebooks' headers print, read out of their text."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of a Markdown text, or of a notebook's ``# `` comment lines."""
    lines = [line[2:] if line.startswith("# ") else ("" if line == "#" else line) for line in text.splitlines()]
    return re.findall(r"^```bash\n(.*?)^```", "\n".join(lines) + "\n", re.S | re.M)


def commands(block: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, quoted newlines kept, comments dropped."""
    out, current = [], ""
    for line in block.replace("\\\n", " ").splitlines():
        current = f"{current}\n{line}" if current else line
        if current.count("'") % 2 == 0:                 # not inside a quoted (YAML) argument
            text = re.sub(r"\s+#\s[^'\n]*$", "", current).strip()   # a trailing comment
            if text and not text.startswith("#"):
                out.append(text)
            current = ""
    return out


def documented(prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(where, command)`` for every printed command starting with one of ``prefixes``."""
    sources = [REPO / "README.md"] + sorted((REPO / "notebooks").glob("*.py"))
    found = []
    for path in sources:
        for block in bash_blocks(path.read_text()):
            for command in commands(block):
                if command.startswith(prefixes):
                    found.append((path.name, command))
    return found
