"""What a static book page needs beyond nbconvert: MathML maths, frozen widgets, the headline.

The built paper (:mod:`paperlib.book.build`) must work opened from disk with no internet, so nothing
here leaves a job for JavaScript: LaTeX becomes MathML (which browsers draw natively) when the
page is built, and each ipywidgets view becomes plain HTML of the state that papermill saved
in the notebook's metadata (an ``Image`` widget becomes an ``<img>`` of its stored PNG).

Public API
----------
``latex_to_mathml(tex, *, display) -> str``
    one LaTeX expression as ``<math>`` (or a marked ``<code class="math-error">`` it cannot read).
``MathMLExporter``
    nbconvert's HTML exporter whose markdown writes maths as MathML instead of ``$...$``.
``freeze_widgets(nb, add_file) -> int``
    replace each widget view output by static HTML of its saved state.
``headline_outputs(nb) -> list``
    the outputs a page shows first: its table beside the paper's and its figure.
``output_html(output) -> str``
    one display output as HTML (an extracted image, HTML or plain text).
"""

from __future__ import annotations

import base64
import re
import warnings
from html import escape
from typing import Callable

from jinja2 import pass_context
from latex2mathml.converter import convert
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HEADLINE_TAG = "headline"
# latex2mathml passes a macro it does not know through as text, e.g. <mi>\foo</mi>.
_UNKNOWN_MACRO = re.compile(r">(\\[A-Za-z]+)<")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


class MathWarning(UserWarning):
    """A LaTeX expression the book could not turn into MathML (shown as its source instead)."""


def latex_to_mathml(tex: str, *, display: str) -> str:
    """One LaTeX expression as MathML, with its source kept as an annotation.

    Args:
        tex: the expression without delimiters (``\\hat s = f(I)``).
        display: ``"inline"`` ($...$) or ``"block"`` ($$...$$, environments).

    Returns:
        a ``<math>`` element; for an expression latex2mathml cannot read (or a macro it does not
        know), ``<code class="math-error">`` with the source, and a :class:`MathWarning`.
    """
    source = tex.strip()
    try:
        mathml = convert(source, display=display)
    # latex2mathml raises a dozen unrelated exception types, one per syntax problem.
    except Exception as err:  # noqa: BLE001
        return _math_error(source, f"{type(err).__name__}: {err}")
    unknown = _UNKNOWN_MACRO.search(mathml)
    if unknown:
        return _math_error(source, f"unknown macro {unknown[1]}")
    # Keep the TeX beside the drawing: copy-paste, screen readers and tests read it there.
    head, _, rest = mathml.partition(">")
    body = rest.rsplit("</math>", 1)[0]
    return (f"{head}><semantics><mrow>{body}</mrow>"
            f'<annotation encoding="application/x-tex">{escape(source)}</annotation></semantics></math>')


def _math_error(source: str, reason: str) -> str:
    warnings.warn(f"maths left as LaTeX ({reason}): {source}", MathWarning, stacklevel=3)
    return f'<code class="math-error" title="{escape(reason)}">{escape(source)}</code>'


class _MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with maths drawn as MathML rather than left for MathJax."""

    def block_math(self, body: str) -> str:
        return latex_to_mathml(body, display="block")

    def inline_math(self, body: str) -> str:
        return latex_to_mathml(body, display="inline")

    def latex_environment(self, name: str, body: str) -> str:
        return latex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display="block")


class MathMLExporter(HTMLExporter):
    """HTMLExporter whose ``markdown2html`` filter writes MathML (no MathJax, no CDN)."""

    @pass_context
    def markdown2html(self, context, source):
        """Markdown to HTML as nbconvert does it, maths as MathML."""
        cell = context.get("cell", {})
        renderer = _MathMLRenderer(escape=False, attachments=cell.get("attachments", {}),
                                   embed_images=self.embed_images, anchor_link_text=self.anchor_link_text,
                                   exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


def freeze_widgets(nb, add_file: Callable[[str, bytes], str]) -> int:
    """Replace each widget view output by static HTML of the state saved with the notebook.

    An ``Image`` widget becomes an ``<img>`` of its stored bytes, a box its children in order, a
    slider or dropdown its label and value; the notebook's widget state is then dropped.

    Args:
        nb: an executed notebook (nbformat NotebookNode); changed in place.
        add_file: ``add_file(name, data) -> src`` stores one file beside the page and returns
            the relative URL that refers to it.

    Returns:
        the number of widget outputs replaced.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    n = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            html = _widget_html(view.get("model_id", ""), state, add_file, f"widget{n}")
            output["data"] = {"text/html": f'<div class="book-widget">{html}</div>',
                              "text/plain": output["data"].get("text/plain", "")}
            n += 1
    nb.metadata.pop("widgets", None)
    return n


def _widget_html(model_id: str, state: dict, add_file, key: str) -> str:
    """Static HTML of one widget model and its children; ``key`` names its image files."""
    model = state.get(model_id)
    missing = '<p class="widget-missing">This widget\'s state was not saved with the notebook.</p>'
    if model is None:
        return missing
    name, values = model.get("model_name", ""), model.get("state", {})
    description = str(values.get("description", ""))
    if name == "ImageModel":
        data = _buffer(model, "value")
        if not data:
            return missing
        src = add_file(f"{key}.{values.get('format', 'png')}", data)
        return f'<img class="widget-image" src="{escape(src)}" alt="{escape(description or "widget image")}">'
    if isinstance(values.get("children"), list):
        children = [_widget_html(child.removeprefix("IPY_MODEL_"), state, add_file, f"{key}_{i}")
                    for i, child in enumerate(values["children"])]
        return f'<div class="widget-box widget-{name.removesuffix("Model").lower()}">{"".join(children)}</div>'
    if name in ("HTMLModel", "HTMLMathModel"):
        return str(values.get("value", ""))
    if name == "LabelModel":
        return f'<span class="widget-label">{escape(str(values.get("value", "")))}</span>'
    if name == "ButtonModel":
        return f'<span class="widget-control widget-button">{escape(description)}</span>'
    if "_options_labels" in values:
        index = values.get("index")
        labels = values["_options_labels"]
        value = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
        return _control(description, value)
    if "value" in values:
        return _control(description, values["value"])
    return ""


def _control(description: str, value) -> str:
    label = f"{escape(description)} = " if description else ""
    return f'<span class="widget-control">{label}<b>{escape(str(value))}</b></span>'


def _buffer(model: dict, key: str) -> bytes:
    """The bytes of a binary widget attribute (papermill saves them base64 in ``buffers``)."""
    for buffer in model.get("buffers", []):
        if buffer.get("path") == [key]:
            data = buffer.get("data", "")
            return base64.b64decode(data) if buffer.get("encoding") == "base64" else bytes.fromhex(data)
    return b""


def headline_outputs(nb) -> list:
    """The outputs a page opens with, after its claim.

    The outputs of cells tagged ``headline`` when there are any; otherwise the first table that
    puts our rows beside the paper's (a DataFrame with a ``source`` level, as
    :func:`paperlib.paper.tables.beside_paper` writes them) and the first figure from that table on
    (the first figure of the notebook when it has no such table).

    Args:
        nb: an executed notebook (nbformat NotebookNode).

    Returns:
        output dicts, in notebook order (possibly empty).
    """
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    tagged = [o for cell in cells if HEADLINE_TAG in cell.metadata.get("tags", []) for o in cell.outputs]
    if tagged:
        return tagged
    outputs = [o for cell in cells for o in cell.get("outputs", []) if "data" in o]
    start, table = 0, None
    for i, output in enumerate(outputs):
        html = output["data"].get("text/html", "")
        if 'class="dataframe' in html and ">source</th>" in html:
            start, table = i, output
            break
    figure = next((o for o in outputs[start:] if any(t in o["data"] for t in _IMAGE_TYPES)), None)
    return [o for o in (table, figure) if o is not None]


def output_html(output) -> str:
    """One display output as HTML: its image (extracted file or inline), HTML, or plain text."""
    data = output.get("data", {})
    files = output.get("metadata", {}).get("filenames", {})
    for mime in _IMAGE_TYPES:
        if mime in data:
            src = files.get(mime) or f"data:{mime};base64,{data[mime]}"
            return f'<img src="{escape(src)}" alt="figure">'
    if "text/html" in data:
        return data["text/html"]
    return f"<pre>{escape(data.get('text/plain', ''))}</pre>"
