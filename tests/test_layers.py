"""The package's architecture, written down once and enforced: folders are layers, imports go down.

A module may import from its own layer (without a cycle) or from any layer below it, never from
a layer above. The order is the paper's: the checks and image files under everything, then the
data and the backbones, the maths (refinement, losses), the model, the methods, evaluation,
training, the paper's artefacts, pictures, the notebooks, the book, the whole-paper run, and the
command line on top. Imports sit at module top, except heavy optional packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "paperlib"

# Lowest first. A top-level module is its own unit; a folder is one layer.
LAYERS = [
    ["checks"],
    ["images", "devices"],
    ["data"],
    ["backbones"],
    ["refine"],
    ["losses"],
    ["model"],
    ["methods"],
    ["eval"],
    ["train"],
    ["paper"],
    ["viz"],
    ["notebook"],
    ["book"],
    ["reproduce"],
    ["cli"],
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _modules() -> dict[str, Path]:
    """Dotted name relative to the package ('refine.guided_filter') -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()
# Compiled extensions (setup.py builds each C file into a module of the same dotted name); a
# module imports one inside a module-level try, since the build is optional.
COMPILED = {".".join(path.relative_to(PACKAGE).with_suffix("").parts) for path in PACKAGE.rglob("*.c")}


def _imports(name: str, path: Path) -> list[tuple[str, list[str], bool]]:
    """(imported module, names, at module top) for every import of a package module."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    top |= {id(node) for block in tree.body if isinstance(block, ast.Try) for node in block.body}
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "paperlib" or node.module.startswith("paperlib.")):
                target = node.module[len("paperlib."):] if node.module != "paperlib" else ""
            else:
                continue
            names = [a.name for a in node.names]
            # `from . import module` imports the module itself
            mods = [f"{target}.{n}".strip(".") for n in names
                    if f"{target}.{n}".strip(".") in MODULES.keys() | COMPILED]
            if mods:
                found += [(m, [], id(node) in top) for m in mods]
            else:
                found.append((target, names, id(node) in top))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("paperlib."):
                    found.append((alias.name[len("paperlib."):], [], id(node) in top))
    return found


def _unit(module: str) -> str:
    """The layer unit of a module: its top folder, or itself; ``__main__`` entry points rank with the CLI."""
    if module.endswith("__main__"):
        return "cli"
    return module.split(".")[0] if module else ""


def _graph() -> dict[str, set[str]]:
    return {name: {m for m, _, _ in _imports(name, path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def test_every_module_sits_in_a_written_down_layer():
    units = {_unit(m) for m in MODULES if m}
    assert units <= set(RANK), f"modules outside the layer list: {sorted(units - set(RANK))}"


def test_no_import_goes_up_a_layer():
    upward = []
    for name, path in MODULES.items():
        if not name:
            continue
        for target, _, _ in _imports(name, path):
            if target and target in MODULES and RANK[_unit(target)] > RANK[_unit(name)]:
                upward.append(f"{name} imports {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_a_private_name():
    private = [f"{name} imports {n} from {target}" for name, path in MODULES.items()
               for target, names, _ in _imports(name, path) for n in names
               if n.startswith("_") and n != "__version__"]
    assert not private, "\n".join(private)


def test_package_imports_sit_at_module_top():
    """Lazy imports of the package's own modules hide cycles and layering; none are left.

    The one exception is the command line: a sub-command imports its work when it runs, so that
    ``paperlib --help`` and ``paperlib <command> --help`` do not pay for torch.
    """
    lazy = [f"{name}: {target}" for name, path in MODULES.items()
            for target, _, top in _imports(name, path)
            if not top and target in MODULES and _unit(name) != "cli"]
    assert not lazy, "imports inside functions:\n" + "\n".join(lazy)


@pytest.mark.parametrize("folder", sorted({_unit(m) for m in MODULES if "." in m}))
def test_each_folder_says_what_it_holds(folder):
    """Each folder's __init__ names its modules in its docstring, and imports nothing."""
    init = PACKAGE / folder / "__init__.py"
    tree = ast.parse(init.read_text())
    doc = ast.get_docstring(tree) or ""
    assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for path in sorted((PACKAGE / folder).glob("*.py")):
        if path.stem not in ("__init__", "__main__"):
            assert path.stem in doc, f"{folder}/__init__.py does not mention {path.stem}"


def test_the_readme_map_names_every_folder_and_module():
    """README's "Where things are" is the map a contributor reads: it may not fall behind the package."""
    readme = (PACKAGE.parent / "README.md").read_text()
    start = readme.index("## Where things are")
    end = readme.find("\n## ", start + 3)
    section = readme[start:end if end >= 0 else len(readme)]
    missing = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
               if p.name not in ("__init__.py", "__main__.py") and p.name not in section]
    missing += [f"{d.name}/" for d in sorted(PACKAGE.rglob("*"))
                if d.is_dir() and d.name != "__pycache__" and f"{d.name}/" not in section]
    assert not missing, f"README's map does not mention: {', '.join(missing)}"
