"""The built paper (paperlib.book.build): real executed notebooks rendered, then opened in headless Chromium.

Three small notebooks (theory, gf_explorer, crop_zoom_explorer) run once per module with papermill
at tiny sizes, each given a provenance sidecar of one shape or the other; hand-made notebooks
cover what those do not (display maths, a table beside the paper's, widget states, errors).
The browser test uses Debian's chromium: it is skipped only when chromium is absent and $CI is
unset; under CI a missing chromium fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from paperlib.book.build import MARKER, build_book
from paperlib.book.render import MathWarning, freeze_widgets, headline_outputs, latex_to_mathml
from paperlib.checks import InputError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags that work on this project's machines (no sandbox as root, no network, no GPU).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUNS = {  # notebook -> tiny parameters
    "theory": {"size": 96},
    "gf_explorer": {"size": 96, "radii": [2, 9], "eps_values": [1e-3]},
    "crop_zoom_explorer": {"size": 96, "n_boxes": 2, "n_grid": 2},
}


def _record(name: str, kind: str, *, runner_shape: bool) -> dict:
    data = [{"name": "duts-te", "root": "data/DUTS-TE", "kind": kind, "images": 502, "used": 20}]
    common = {"notebook": name, "parameters": RUNS[name], "data": data, "device": "cpu (2 threads)",
              "versions": {"paperlib": "0.1.0"}, "wall_s": 75.4,
              "outputs": [{"path": f"results/notebooks/smoke/{name}.ipynb", "sha256": "ab" * 32}]}
    if runner_shape:   # what `paperlib notebook run` writes
        return dict(common, tag="smoke", code={"commit": "c0ffee" * 6 + "abcd", "dirty": True},
                    backbones={"filterbank16": "none"})
    return dict(common, commit="deadbeef" * 5, dirty=False, backbone="dino_vits16",
                weights_sha256="sha256:" + "12" * 32)


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """Three real notebooks executed by papermill, with provenance sidecars of both shapes."""
    import jupytext
    import papermill

    work = tmp_path_factory.mktemp("executed")
    out = work / "smoke"
    out.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        # CI exports MPLBACKEND=Agg, under which the kernel would show no figure at all.
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        for name, parameters in RUNS.items():
            source = work / f"{name}.source.ipynb"
            jupytext.write(jupytext.read(NOTEBOOKS / f"{name}.py"), source)
            papermill.execute_notebook(str(source), str(out / f"{name}.ipynb"), parameters=parameters,
                                       cwd=str(work), execution_timeout=300, progress_bar=False)
    sidecars = {"theory.ipynb.provenance.json": _record("theory", "synthetic", runner_shape=True),
                "gf_explorer.provenance.json": _record("gf_explorer", "sample", runner_shape=False),
                "crop_zoom_explorer.provenance.json": _record("crop_zoom_explorer", "full", runner_shape=False)}
    for filename, record in sidecars.items():
        (out / filename).write_text(json.dumps(record))
    return out


@pytest.fixture(scope="module")
def book(executed, tmp_path_factory) -> Path:
    return build_book(executed, tmp_path_factory.mktemp("book") / "smoke").parent


def _soup(path: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(), "html.parser")


# -- the site, read as files ----------------------------------------------------------------------

@pytest.mark.slow
def test_each_page_opens_with_the_claim_then_the_result(book):
    for name in RUNS:
        page = _soup(book / f"{name}.html")
        first = page.main.find(True)
        assert first.name == "header" and "book-claim" in first["class"]
        assert first.h1 is not None, f"{name}: the claim has no title"
        result = page.find("section", class_="book-result")
        assert result.find("img") is not None, f"{name}: no figure in the result"
        assert (book / result.img["src"]).is_file()
        # Code is folded away; outputs are not.
        cells = page.select(".jp-CodeCell")
        assert cells and all(c.select_one("details.book-code .jp-InputArea") for c in cells)
        assert not page.select(".jp-CodeCell > .jp-Cell-inputWrapper")
        assert page.find("script") is None


@pytest.mark.slow
def test_nothing_is_fetched_from_outside(book):
    for html in book.glob("*.html"):
        page = _soup(html)
        refs = [tag.get("src") for tag in page.find_all(src=True)] + [tag.get("href") for tag in page.find_all(href=True)]
        outside = [r for r in refs if urlsplit(r).scheme not in ("", "data")]
        assert not outside, f"{html.name} refers outside the book: {outside}"


@pytest.mark.slow
def test_explorers_show_their_first_image_from_the_saved_widget_state(book):
    from PIL import Image

    for name in ("gf_explorer", "crop_zoom_explorer"):
        page = _soup(book / f"{name}.html")
        images = page.select(".book-widget img.widget-image")
        assert len(images) == 1, name
        with Image.open(book / images[0]["src"]) as image:
            assert image.width > 100 and image.height > 50
        assert page.select(".book-widget .widget-control"), f"{name}: the sliders' values are not shown"
        assert "widget-state" not in (book / f"{name}.html").read_text()


@pytest.mark.slow
def test_maths_is_mathml(book):
    page = _soup(book / "crop_zoom_explorer.html")
    maths = page.select(".book-claim math")
    assert len(maths) >= 5
    tex = [m.find("annotation").get_text() for m in maths]
    assert any(r"\hat s" in t for t in tex)
    for html in book.glob("*.html"):
        prose = _soup(html).select(".book-claim, .jp-MarkdownCell")
        for code in (c for md in prose for c in md.select("code, pre")):
            code.decompose()     # a dollar in code ($HOME) is not maths
        assert "$" not in " ".join(md.get_text() for md in prose), f"{html.name}: raw TeX left"
    assert not page.select(".math-error")


@pytest.mark.slow
def test_index_lists_every_page_with_its_provenance(book, executed):
    rows = _soup(book / "index.html").select("table.book-index tbody tr")
    assert [r.a["href"] for r in rows] == ["theory.html", "gf_explorer.html", "crop_zoom_explorer.html"]
    theory, gf, crop = ([c.get_text(" ", strip=True) for c in r.find_all("td")] for r in rows)
    assert theory[1:5] == ["synthetic duts-te, 20 of 502 images", "filterbank16", "c0ffeec0ffee (dirty)", "1 min 15 s"]
    assert gf[1:4] == ["sample duts-te, 20 of 502 images", "dino_vits16", "deadbeefdead"]
    assert "dirty" not in crop[3]
    for row in rows:
        record = book / row.find("a", class_="book-record")["href"]
        name = row.a["href"].removesuffix(".html")
        assert json.loads(record.read_text())["notebook"] == name


@pytest.mark.slow
def test_synthetic_and_sample_results_are_labelled_on_their_page(book):
    notices = {name: _soup(book / f"{name}.html").select(".book-notice") for name in RUNS}
    assert "synthetic data" in notices["theory"][0].get_text() and "book-synthetic" in notices["theory"][0]["class"]
    assert "sample of the official data" in notices["gf_explorer"][0].get_text()
    assert notices["crop_zoom_explorer"] == []
    provenance = _soup(book / "gf_explorer.html").find(id="provenance").get_text(" ")
    assert "deadbeefdead" in provenance and "sha256:1212" in provenance and "dino_vits16" in provenance


# -- hand-made notebooks: what the real ones do not show ----------------------------------------

def _png(width: int = 6, height: int = 4) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _notebook(folder: Path, name: str, markdown: str, outputs=(), **metadata) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"papermill": {"parameters": {}}, **metadata})
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), nbformat.v4.new_code_cell("x = 1", outputs=list(outputs))]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


def _beside_paper_html() -> str:
    import pandas as pd

    index = pd.MultiIndex.from_tuples([("TokenCut", "ours"), ("TokenCut", "paper")], names=["method", "source"])
    return pd.DataFrame({"iou": [0.5, 0.6]}, index=index).to_html()


def _display(data: dict):
    return nbformat.v4.new_output("display_data", data=data)


def test_headline_is_the_table_beside_the_paper_and_the_figure_after_it():
    png = base64.b64encode(_png()).decode()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a", outputs=[_display({"image/png": png, "text/plain": "early"})]),
                nbformat.v4.new_code_cell("b", outputs=[_display({"text/html": "<table class=\"dataframe\"></table>"})]),
                nbformat.v4.new_code_cell("c", outputs=[_display({"text/html": _beside_paper_html()})]),
                nbformat.v4.new_code_cell("d", outputs=[_display({"image/png": png, "text/plain": "late"})])]
    table, figure = headline_outputs(nb)
    assert ">source</th>" in table["data"]["text/html"] and figure["data"]["text/plain"] == "late"
    nb.cells[1].metadata["tags"] = ["headline"]
    assert headline_outputs(nb) == list(nb.cells[1].outputs)
    nb.cells = nb.cells[:1]
    assert [o["data"]["text/plain"] for o in headline_outputs(nb)] == ["early"]


def _widget_state(png: bytes) -> dict:
    def model(name, state, buffers=()):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
                "state": state, "buffers": list(buffers)}
    return {"version_major": 2, "version_minor": 0, "state": {
        "box": model("VBoxModel", {"children": ["IPY_MODEL_slider", "IPY_MODEL_pick", "IPY_MODEL_image"]}),
        "slider": model("IntSliderModel", {"description": "radius r", "value": 9}),
        "pick": model("DropdownModel", {"description": "sampler", "_options_labels": ["paper", "official"],
                                        "index": 1}),
        "image": model("ImageModel", {"format": "png"},
                       [{"path": ["value"], "encoding": "base64", "data": base64.b64encode(png).decode()}])}}


def test_freeze_widgets_draws_the_saved_image_and_values():
    png = _png(8, 5)
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"application/vnd.jupyter.widget-state+json": _widget_state(png)}})
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "box", "version_major": 2},
            "text/plain": "VBox(...)"}
    lost = {"application/vnd.jupyter.widget-view+json": {"model_id": "gone"}, "text/plain": "x"}
    nb.cells = [nbformat.v4.new_code_cell("w", outputs=[_display(view), _display(lost)])]
    files = {}

    def add_file(name: str, data: bytes) -> str:
        files[f"f/{name}"] = data
        return f"f/{name}"

    assert freeze_widgets(nb, add_file) == 2
    html = nb.cells[0].outputs[0]["data"]["text/html"]
    assert list(files.values()) == [png] and f'src="{next(iter(files))}"' in html
    assert "radius r = <b>9</b>" in html and "sampler = <b>official</b>" in html
    assert "not saved" in nb.cells[0].outputs[1]["data"]["text/html"]
    assert "widgets" not in nb.metadata


def test_latex_to_mathml_keeps_the_source_and_flags_what_it_cannot_read():
    mathml = latex_to_mathml(r"\frac{a}{b} < c", display="block")
    assert mathml.startswith("<math") and 'display="block"' in mathml and "<mfrac>" in mathml
    assert r'<annotation encoding="application/x-tex">\frac{a}{b} &lt; c</annotation>' in mathml
    with pytest.warns(MathWarning, match="unknown macro"):
        assert 'class="math-error"' in latex_to_mathml(r"\notamacro{x}", display="inline")
    with pytest.warns(MathWarning):
        assert 'class="math-error"' in latex_to_mathml(r"x^1^2", display="inline")


def test_hand_made_book_display_maths_table_and_missing_record(tmp_path):
    png = base64.b64encode(_png()).decode()
    _notebook(tmp_path / "nb", "table9", "# Table 9: a claim\n\n$$\\mathcal{L} = \\sum_i x_i^2$$ and $a_b$, "
              "not `$HOME`.", [_display({"text/html": _beside_paper_html()}), _display({"image/png": png})])
    _notebook(tmp_path / "nb", "table9.failed", "# a run that stopped")
    with pytest.warns(UserWarning, match="table9.failed.ipynb"):
        index = build_book(tmp_path / "nb", tmp_path / "book", title="My book")
    page = _soup(index.parent / "table9.html")
    assert [m["display"] for m in page.select(".book-claim math")] == ["block", "inline"]
    assert page.select_one(".book-claim code").get_text() == "$HOME"
    assert ">source</th>" in str(page.select_one(".book-result .book-headline"))
    assert "book-unknown" in page.select_one(".book-notice")["class"]
    assert "No provenance record" in page.find(id="provenance").get_text()
    assert sorted(p.name for p in index.parent.glob("*.html")) == ["index.html", "table9.html"]
    assert "My book" in index.read_text()


def test_a_rebuild_replaces_the_previous_book_and_nothing_else(tmp_path):
    _notebook(tmp_path / "nb", "one", "# One: a claim")
    out = tmp_path / "books" / "smoke"
    build_book(tmp_path / "nb", out)
    (out / "stale.html").write_text("from an old build")
    _notebook(tmp_path / "nb", "two", "# Two: another claim")
    build_book(tmp_path / "nb", out)
    assert (out / "two.html").is_file() and not (out / "stale.html").exists() and (out / MARKER).is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["smoke"]   # no temporary folder left
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)


def test_a_folder_the_user_made_is_never_replaced(tmp_path):
    _notebook(tmp_path / "nb", "one", "# One")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a book built by paperlib"):
        build_book(tmp_path / "nb", mine)
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["mine", "nb"]


def test_a_failed_build_leaves_the_previous_book(tmp_path):
    _notebook(tmp_path / "nb", "one", "# One")
    out = tmp_path / "books" / "smoke"
    build_book(tmp_path / "nb", out)
    before = (out / "one.html").read_text()
    (tmp_path / "nb" / "one.provenance.json").write_text("{not json")
    with pytest.raises(InputError, match="one.provenance.json: not valid JSON"):
        build_book(tmp_path / "nb", out)
    assert (out / "one.html").read_text() == before and sorted(p.name for p in out.parent.iterdir()) == ["smoke"]
    (tmp_path / "nb" / "one.provenance.json").write_text(json.dumps({"data": [{"kind": "guessed"}]}))
    with pytest.raises(InputError, match="data kind must be one of"):
        build_book(tmp_path / "nb", out)
    with pytest.raises(InputError, match="no notebook executed by papermill"):
        build_book(tmp_path / "books", tmp_path / "other")
    (tmp_path / "nb" / "one.provenance.json").unlink()
    (tmp_path / "nb" / "bad.ipynb").write_text("{half a notebook")
    with pytest.raises(InputError, match="bad.ipynb: not a readable notebook"):
        build_book(tmp_path / "nb", out)
    assert (out / "one.html").read_text() == before


def test_cli_book(tmp_path, capsys):
    from paperlib.cli.main import main

    _notebook(tmp_path / "nb", "one", "# One")
    assert main(["book", "--executed", str(tmp_path / "nb"), "--out", str(tmp_path / "book")]) == 0
    assert "book: 1 page(s)" in capsys.readouterr().out and (tmp_path / "book" / "index.html").is_file()
    assert main(["book", "--executed", str(tmp_path / "nb"), "--out", str(tmp_path / "nb")]) == 2
    assert "not a book built by paperlib" in capsys.readouterr().err


# -- a real browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Debian chromium driven by playwright, with a fresh profile."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS)
        yield context
        context.close()


@pytest.fixture
def serve():
    """Serve a folder on 127.0.0.1; returns its base URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = partial(_QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _inspect(context, url: str) -> list[str]:
    """Everything wrong with one page as Chromium sees it (an empty list when it is fine)."""
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.goto(url, wait_until="load")
    for src, width in page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.naturalWidth])"):
        if width == 0:
            problems.append(f"image not shown: {src}")
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        problems += _check_link(page, url, href)
    text = page.inner_text("body")
    if "$$" in text or "\\frac" in text:
        problems.append("raw TeX on the page")
    for box in page.eval_on_selector_all("math", "els => els.map(e => e.getBoundingClientRect().height)"):
        if box <= 0:
            problems.append("a formula is not drawn")
    page.close()
    return problems


def _check_link(page, url: str, href: str) -> list[str]:
    target, here = urlsplit(href), urlsplit(url)
    if target.scheme not in ("http", "file") or target.netloc != here.netloc:
        return [f"link leaves the book: {href}"]
    if target.path == here.path and target.fragment:
        # As the HTML standard finds a fragment's element: the fragment as written, then decoded
        # (nbconvert writes a heading's '%' as '%25' in both the id and the link).
        found = page.evaluate("ids => ids.some(id => document.getElementById(id) !== null)",
                              [target.fragment, unquote(target.fragment)])
        return [] if found else [f"no anchor #{target.fragment}"]
    if target.scheme == "file":
        return [] if Path(unquote(target.path)).is_file() else [f"broken link: {href}"]
    status = page.request.get(href).status
    return [] if status == 200 else [f"broken link ({status}): {href}"]


@pytest.mark.slow
def test_the_book_in_headless_chromium(book, browser, serve):
    base = serve(book)
    pages = ["index.html", *(f"{name}.html" for name in RUNS)]
    for name in pages:
        assert _inspect(browser, base + name) == [], name
    # Opened from disk, with no server: the same pages load and show every image.
    for name in pages:
        assert _inspect(browser, (book / name).as_uri()) == [], f"file:// {name}"
    page = browser.new_page()
    for name in ("gf_explorer", "crop_zoom_explorer"):
        page.goto(base + f"{name}.html")
        widths = page.eval_on_selector_all(".book-widget img", "els => els.map(e => e.naturalWidth)")
        assert len(widths) == 1 and widths[0] > 100, f"{name}: the explorer's first image is not shown"
        assert "Provenance" in page.inner_text("#provenance")
    page.goto(base + "crop_zoom_explorer.html")
    assert page.eval_on_selector_all(".book-claim math", "els => els.length") >= 5
    page.goto(base + "index.html")
    assert page.locator("a.book-record").count() == len(RUNS)
    assert "c0ffeec0ffee (dirty)" in page.inner_text("table.book-index")
    page.close()


def test_the_browser_check_catches_a_broken_page(browser, serve, tmp_path):
    (tmp_path / "index.html").write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png"><a href="nowhere.html">x</a><a href="#no-such-id">y</a>'
        "<p>$$\\frac{a}{b}$$</p><script>undefinedFunction()</script></body></html>")
    problems = _inspect(browser, serve(tmp_path) + "index.html")
    for expected in ("image not shown", "broken link (404)", "no anchor #no-such-id", "raw TeX",
                     "script error", "HTTP 404"):
        assert any(expected in p for p in problems), (expected, problems)


@pytest.mark.skipif(not os.environ.get("PAPERLIB_BOOK_DIR"), reason="checks the book `make book` built "
                    "(.ci/run sets PAPERLIB_BOOK_DIR after `make book`)")
def test_the_book_make_book_built(browser, serve):
    """Every page of the smoke book CI builds loads, draws every figure and keeps every link."""
    book = Path(os.environ["PAPERLIB_BOOK_DIR"])
    pages = sorted(p.name for p in book.glob("*.html"))
    assert "index.html" in pages and len(pages) == 10, pages     # the index and the nine notebooks
    base = serve(book)
    for name in pages:
        assert _inspect(browser, base + name) == [], name
