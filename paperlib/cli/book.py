"""The ``paperlib book`` sub-command: the executed notebooks as a static, offline HTML site.

Public API
----------
``add_book(sub)``
    register the sub-command on the sub-parsers of :func:`paperlib.cli.main.build_parser`.
"""

from __future__ import annotations

from pathlib import Path


def add_book(sub) -> None:
    """Register ``book``: render a folder of executed notebooks as the browsable paper."""
    p = sub.add_parser("book", help="render executed notebooks as a static HTML site (the browsable paper)",
                       description="Each page opens with the paper's claim and its table or figure beside "
                                   "ours, then the notebook with its code folded, then its provenance record. "
                                   "No script, nothing fetched: open OUT/index.html from disk or serve OUT.")
    p.add_argument("--executed", required=True, type=Path,
                   help="folder of notebooks executed by `paperlib notebook run` (results/notebooks/<tag>)")
    p.add_argument("--out", required=True, type=Path,
                   help="the book's folder; replaced only when it holds a previous book (results/book/<tag>)")
    p.add_argument("--title", help="the book's title (default: the paper's)")
    p.set_defaults(run=_run_book)


def _run_book(args) -> int:
    # nbconvert comes with the notebooks extra; import it only when a book is built.
    import warnings

    from ..book.build import DEFAULT_TITLE, build_book

    with warnings.catch_warnings(record=True) as notes:   # a reader wants the note, not its source line
        warnings.simplefilter("always")
        index = build_book(args.executed, args.out, title=args.title or DEFAULT_TITLE)
    for note in notes:
        print(f"note: {note.message}")
    pages = sum(1 for p in index.parent.glob("*.html") if p.name != "index.html")
    print(f"book: {pages} page(s) -> {index}")
    return 0
