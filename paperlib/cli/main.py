"""The ``paperlib`` command line. Each sub-command is a thin layer over a package function.

Bad input ends with one line on stderr naming the file or parameter, and exit status 2; any
other failure is one line too (exit 3), and ``--debug`` shows its traceback instead.

Public API
----------
``main(argv=None) -> int``
    run the command (the ``paperlib`` console entry point; also ``python -m paperlib.cli``).
``build_parser() -> argparse.ArgumentParser``
    the parser with every sub-command.
``EXIT_BAD_INPUT``
    the exit status for bad input (2).
``EXIT_FAILED``
    the exit status for anything else that went wrong (3).

The sub-commands live by concept: :mod:`paperlib.cli.masks` (refine, eval-masks, gf-sweep),
:mod:`paperlib.cli.methods` (segment, eval, corloc), :mod:`paperlib.cli.data` (``data ...``),
:mod:`paperlib.cli.notebook` (``notebook run|list|params``);
:mod:`paperlib.cli.train` (``train``, also ``python -m paperlib.train``), :mod:`paperlib.cli.paper`
and :mod:`paperlib.cli.book`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Sequence

from ..checks import InputError
from .baselines import add_baselines
from .book import add_book
from .data import add_data
from .masks import add_eval_masks, add_gf_sweep, add_refine
from .methods import add_corloc, add_eval, add_segment
from .notebook import add_notebook
from .paper import add_paper
from .train import add_train

EXIT_BAD_INPUT = 2
EXIT_FAILED = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paperlib`` command."""
    parser = argparse.ArgumentParser(
        prog="paperlib",
        description="Two Tricks to Improve Unsupervised Segmentation Learning: tools and evaluation.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true",
                        help="on failure, show Python's traceback instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_refine, add_eval_masks, add_segment, add_eval, add_corloc, add_baselines, add_train,
                add_data, add_gf_sweep, add_notebook, add_paper, add_book):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 bad input, 3 failed)."""
    args = build_parser().parse_args(argv)
    args.cli_main = main   # commands that run other commands (``paper``) call back through this
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _warning_line
            return args.run(args)
    except KeyboardInterrupt:
        print("paperlib: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        return _one_line(err)


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, as a user reads it: no source path, no code line."""
    text = str(message).replace("\n", " ")
    print(f"paperlib: warning: {text}", file=sys.stderr if file is None else file)


def _one_line(err: Exception) -> int:
    """Print a failure as one line on stderr and return its exit status."""
    if isinstance(err, InputError):
        print(f"paperlib: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(err, OSError) and err.filename is not None:   # a file the user named: bad input
        print(f"paperlib: error: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    first = (str(err).splitlines() or [""])[0][:300]
    print(f"paperlib: error: {type(err).__name__}: {first} (run with --debug for the traceback)", file=sys.stderr)
    return EXIT_FAILED

