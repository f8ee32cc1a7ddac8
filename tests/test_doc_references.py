"""Every dotted name the documents cite (``paperlib.refine.guided_filter.PAPER_GF``) exists.

README.md, docs/paper_and_code.md, the notebooks and the package's docstrings tell a reader
where things live; after a module moves or a name changes, a stale reference fails here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ([ROOT / "README.md", ROOT / "docs" / "paper_and_code.md"] + sorted((ROOT / "notebooks").glob("*.py"))
             + sorted((ROOT / "paperlib").rglob("*.py")))
# A dotted name, not inside a string literal (the synthetic set's marker names its generator).
REFERENCE = re.compile(r"(?<![\w/\"'])paperlib(?:\.[A-Za-z_]\w*)+")


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute reached from the longest importable module."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_name_exists(path):
    cited = sorted({m.group(0) for m in REFERENCE.finditer(path.read_text())})
    stale = [name for name in cited if not resolves(name)]
    assert not stale, f"{path.name} cites names that do not exist: {', '.join(stale)}"


def test_a_stale_name_is_caught():
    assert resolves("paperlib.refine.guided_filter.PAPER_GF")
    assert not resolves("paperlib.guided_filter.PAPER_GF")          # the flat layout before the move
    assert not resolves("paperlib.refine.guided_filter.NO_SUCH_NAME")


def test_every_guarantee_names_a_test_that_exists():
    """README's "What paperlib guarantees" cites tests; each file and test function must exist."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## What paperlib guarantees")
    section = readme[start:readme.index("\n## ", start + 3)]
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", section)
    assert len(cited) >= 10
    for path, name in cited:
        source = (ROOT / path).read_text()
        assert not name or f"def {name}(" in source, f"{path} has no test {name}"
