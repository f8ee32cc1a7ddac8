"""The built paper: executed notebooks rendered to a static HTML site that works offline.

Each page opens with the paper's claim (the notebook's first markdown cell), then its table or
figure with ours beside the paper's (:func:`paperlib.book.render.headline_outputs`), a label
when the data were synthetic or a sample, the notebook as it ran with its code folded away, and
its provenance record. The site has no script and fetches nothing: maths is MathML, widgets
are the images and values papermill saved, links are relative, so it works opened from disk.

A build is one folder::

    index.html                           every page with its provenance
    <name>.html, <name>_files/           one page per notebook and its figures
    provenance/<name>.provenance.json    the sidecar records, copied
    notebooks/<name>.ipynb               the executed notebooks, copied
    _static/                             the style sheets
    .paperlib-book                       marks the folder as a build (a rebuild may replace it)

Public API
----------
``build_book(executed_dir, out_dir, *, title=...) -> Path``
    render every executed notebook of a folder; returns the index page.
``read_record(path) -> dict``
    one provenance sidecar, checked.
``PAGE_ORDER``, ``MARKER``, ``DEFAULT_TITLE``
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import nbformat
from jinja2 import Environment, FileSystemLoader, select_autoescape
from nbconvert.preprocessors import ExtractOutputPreprocessor
from pygments.formatters import HtmlFormatter
from traitlets.config import Config

from ..checks import InputError, require
from .render import MathMLExporter, freeze_widgets, headline_outputs, output_html

RESOURCES = Path(__file__).resolve().parents[1] / "resources"   # paperlib/resources
MARKER = ".paperlib-book"
DEFAULT_TITLE = "Two Tricks to Improve Unsupervised Segmentation Learning, reproduced"
# The paper's order: background, training, Tables 1-5, Figs. 6-8, then the explorers; a
# notebook not named here follows in alphabetical order.
PAGE_ORDER = ("theory", "train", "tables_1_3_saliency", "tables_2_4_corloc", "table5_gf_vs_bf",
              "figs_6_8_iou_by_size", "protocols", "gf_explorer", "crop_zoom_explorer")
# Widget views and JavaScript would need scripts from a CDN; their fallbacks render statically.
_DISPLAY_PRIORITY = ["text/html", "text/markdown", "image/svg+xml", "text/latex", "image/png",
                     "image/jpeg", "text/plain"]
_KIND_RANK = {"full": 0, "sample": 1, "synthetic": 2}
_NOTICES = {
    "synthetic": "Computed on synthetic data ({data}): smoke numbers that show the pipeline works, "
                 "not the paper's results.",
    "sample": "Computed on a sample of the official data ({data}): real images, but not the whole "
              "test sets the paper scores.",
    "unknown": "No provenance record was found: what data these results come from is unknown.",
}


def build_book(executed_dir: str | Path, out_dir: str | Path, *, title: str = DEFAULT_TITLE) -> Path:
    """Render every executed notebook of a folder as one static, offline HTML site.

    The site is written to a temporary folder beside ``out_dir`` and renamed into place, so a
    reader never sees half a book; a previous build at ``out_dir`` (marked by :data:`MARKER`) is
    replaced, any other existing folder is refused.

    Args:
        executed_dir: folder of notebooks executed by papermill (``<name>.ipynb``), each with an
            optional provenance sidecar, ``<name>.ipynb.provenance.json`` as ``paperlib notebook
            run`` writes it or ``<name>.provenance.json`` (see :func:`read_record`).
        out_dir: the book's folder.
        title: the book's title, on the index and in every page's navigation bar.

    Returns:
        the path of the index page, ``out_dir / "index.html"``.
    """
    executed_dir, out_dir = Path(executed_dir), Path(out_dir)
    require(executed_dir.is_dir(), f"{executed_dir}: no such folder of executed notebooks")
    require(not out_dir.exists() or (out_dir / MARKER).is_file(),
            f"{out_dir} exists and is not a book built by paperlib (no {MARKER} file); "
            "choose another folder or remove it")
    notebooks = _executed_notebooks(executed_dir)
    require(bool(notebooks), f"{executed_dir}: no notebook executed by papermill (*.ipynb)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.building-"))
    try:
        _write_book(notebooks, tmp, title=title, source=executed_dir)
        _swap_into_place(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir / "index.html"


def read_record(path: str | Path) -> dict:
    """One provenance sidecar (``<name>.provenance.json``), checked.

    Args:
        path: the JSON file: an object with the keys notebook, parameters, commit, dirty, data
            (a list of {name, root, kind: synthetic | sample | full, images, optional used}),
            backbone, weights_sha256, versions, device, wall_s and outputs ([{path, sha256}]).
            The runner's shape is read too: ``code: {commit, dirty}`` and ``backbones: {name:
            weights identity}`` in place of commit, dirty, backbone and weights_sha256.

    Returns:
        the record as a dict (keys it lacks are shown as unknown).
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err
    require(isinstance(record, dict), f"{path}: a provenance record must be a JSON object")
    data = record.get("data", [])
    require(isinstance(data, list) and all(isinstance(d, dict) for d in data),
            f"{path}: 'data' must be a list of {{name, root, kind, images}} objects")
    kinds = {d.get("kind") for d in data} - set(_KIND_RANK)
    require(not kinds, f"{path}: data kind must be one of {', '.join(_KIND_RANK)}, got {sorted(map(str, kinds))}")
    return record


def _executed_notebooks(folder: Path) -> list[Path]:
    found, skipped = [], []
    for path in sorted(folder.glob("*.ipynb")):
        # NAME.failed.ipynb (a run that stopped) and NAME.source.ipynb (unexecuted) are not results.
        executed = "." not in path.stem and "papermill" in _read_notebook(path).metadata
        (found if executed else skipped).append(path)
    if skipped:
        warnings.warn(f"left out of the book (not a notebook executed by papermill): "
                      f"{', '.join(p.name for p in skipped)}", stacklevel=3)
    rank = {name: i for i, name in enumerate(PAGE_ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def _read_notebook(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except ValueError as err:    # nbformat's NotJSONError is a ValueError
        raise InputError(f"{path}: not a readable notebook ({err})") from err


def _sidecar(notebook: Path) -> Path | None:
    """The notebook's provenance record: NAME.ipynb.provenance.json (``paperlib notebook run``) or
    NAME.provenance.json; None when it has neither."""
    candidates = (notebook.with_name(notebook.name + ".provenance.json"),
                  notebook.with_name(f"{notebook.stem}.provenance.json"))
    return next((path for path in candidates if path.is_file()), None)


def _write_book(notebooks: list[Path], root: Path, *, title: str, source: Path) -> None:
    pages = []
    for path in notebooks:
        sidecar = _sidecar(path)
        record = read_record(sidecar) if sidecar is not None else None
        if sidecar is not None:
            _copy(sidecar, root / "provenance" / sidecar.name)
        _copy(path, root / "notebooks" / path.name)
        nb = _read_notebook(path)
        pages.append((nb, _page_info(path.stem, nb, record, sidecar.name if sidecar else None)))
    exporter = MathMLExporter(template_name="lab", template_file="book_page.html.j2",
                              extra_template_paths=[str(RESOURCES)],
                              config=Config({"NbConvertBase": {"display_data_priority": _DISPLAY_PRIORITY}}))
    for i, (nb, page) in enumerate(pages):
        _write_page(exporter, nb, page, root, book_title=title, prev_page=pages[i - 1][1] if i > 0 else None,
                    next_page=pages[i + 1][1] if i + 1 < len(pages) else None)
    env = Environment(loader=FileSystemLoader(RESOURCES), autoescape=select_autoescape(["j2"]))
    index = env.get_template("book_index.html.j2").render(title=title, pages=[p for _, p in pages],
                                                           source=str(source))
    (root / "index.html").write_text(index, encoding="utf-8")
    _copy(RESOURCES / "book.css", root / "_static" / "book.css")
    (root / "_static" / "pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"))
    (root / MARKER).write_text(json.dumps({"built_by": "paperlib book", "executed": str(source),
                                           "pages": [p["href"] for _, p in pages]}, indent=1) + "\n")


def _write_page(exporter, nb, page: dict, root: Path, *, book_title: str, prev_page: dict | None,
                next_page: dict | None) -> None:
    """Render one notebook to ``root/<name>.html`` and its figures to ``root/<name>_files/``."""
    name, files = page["name"], {}
    files_dir = f"{name}_files"

    def add_file(filename: str, data: bytes) -> str:
        files[f"{files_dir}/{filename}"] = data
        return f"{files_dir}/{filename}"

    claim_at = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    claim = nb.cells.pop(claim_at).source if claim_at is not None else f"# {name}"
    freeze_widgets(nb, add_file)
    nb, resources = ExtractOutputPreprocessor().preprocess(nb, {"unique_key": name, "output_files_dir": files_dir,
                                                                     "outputs": {}})
    files.update(resources["outputs"])
    headline = "\n".join(f'<div class="book-headline">{output_html(o)}</div>' for o in headline_outputs(nb))
    book = {"book_title": book_title, "title": page["title"], "claim": claim, "page": page, "prev": prev_page,
            "next": next_page, "headline": headline or "<p>This notebook shows no table or figure.</p>",
            "error": any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))}
    html, _ = exporter.from_notebook_node(nb, resources={"book": book})
    (root / page["href"]).write_text(html, encoding="utf-8")
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)


def _page_info(name: str, nb, record: dict | None, record_name: str | None) -> dict:
    """What the templates show of a page: its title, data label and provenance fields."""
    claim = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title = next((line.lstrip("#").strip() for line in claim.splitlines() if line.startswith("# ")), name)
    page = {"name": name, "title": title, "short": title.split(":")[0], "href": f"{name}.html",
            "notebook_href": f"notebooks/{name}.ipynb", "record_href": None, "kind": "unknown",
            "data": "unknown", "backbone": "unknown", "commit": "unknown", "wall": "unknown", "fields": [],
            "notice": _NOTICES["unknown"], "summary": "No provenance record"}
    if record is None:
        return page
    data = record.get("data", [])
    code = record.get("code") if isinstance(record.get("code"), dict) else {}
    # The runner nests the checkout's state under "code" and names every backbone it used.
    commit, dirty = record.get("commit", code.get("commit")), record.get("dirty", code.get("dirty"))
    backbones = record.get("backbones") if isinstance(record.get("backbones"), dict) else {}
    weights = (record.get("weights_sha256") or record.get("weights")
               or ", ".join(f"{k}: {v}" for k, v in backbones.items()))
    page["kind"] = max((d.get("kind", "full") for d in data), key=_KIND_RANK.get, default="none")
    page["data"] = "; ".join(map(_data_label, data)) or "no dataset"
    page["notice"] = _NOTICES.get(page["kind"], "").format(data=page["data"])
    page["backbone"] = str(record.get("backbone") or ", ".join(backbones) or "none")
    page["commit"] = str(commit or "unknown")[:12] + (" (dirty)" if dirty else "")
    page["wall"] = _duration(record.get("wall_s"))
    page["record_href"] = f"provenance/{record_name}"
    page["summary"] = f"Data: {page['data']}; backbone {page['backbone']}; commit {page['commit']}; {page['wall']}"
    outputs = ", ".join(f"{o.get('path')} (sha256 {str(o.get('sha256'))[:12]})" for o in record.get("outputs", [])
                        if isinstance(o, dict))
    versions = record.get("versions") or {}
    page["fields"] = [
        ("notebook", str(record.get("notebook", name))), ("tag", str(record.get("tag", "none"))),
        ("data", page["data"]), ("backbone", page["backbone"]), ("weights", str(weights or "none")),
        ("commit", page["commit"]), ("device", str(record.get("device") or "unknown")),
        ("wall time", page["wall"]), ("parameters", json.dumps(record.get("parameters", {}), sort_keys=True,
                                                               default=str)),
        ("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) if isinstance(versions, dict)
         else str(versions)),
        ("outputs", outputs or "none")]
    return page


def _data_label(use: dict) -> str:
    images, used = use.get("images", "?"), use.get("used")
    count = f"{used} of {images} images" if used is not None and used != images else f"{images} images"
    return f"{use.get('kind', '?')} {use.get('name', '?')}, {count}"


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "unknown"
    minutes, s = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {s} s" if minutes else f"{s} s"


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _swap_into_place(new: Path, out_dir: Path) -> None:
    """Rename the finished build onto ``out_dir``; a previous build is removed only after that."""
    new.chmod(0o755)   # mkdtemp makes it private; a book is for reading (and serving)
    if not out_dir.exists():
        os.replace(new, out_dir)
        return
    old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
    os.replace(out_dir, old / "book")
    try:
        os.replace(new, out_dir)
    except OSError:
        os.replace(old / "book", out_dir)
        raise
    finally:
        shutil.rmtree(old)
