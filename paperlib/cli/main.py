"""The ``paperlib`` command line. Each sub-command is a thin layer over a package function.

Bad input ends with one line on stderr naming the file or parameter, and exit status 2.

Public API
----------
``main(argv=None) -> int``
    run the command (the ``paperlib`` console entry point; also ``python -m paperlib.cli``).
``build_parser() -> argparse.ArgumentParser``
    the parser with every sub-command.
``EXIT_BAD_INPUT``
    the exit status for bad input (2).

The sub-commands live by concept: :mod:`paperlib.cli.masks` (refine, eval-masks, gf-sweep),
:mod:`paperlib.cli.methods` (segment, eval, corloc), :mod:`paperlib.cli.data` (``data ...``),
:mod:`paperlib.cli.notebook` (``notebook run|list|params``);
``train`` takes its arguments from :mod:`paperlib.train.loop`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..checks import InputError
from .book import add_book
from .data import add_data
from .masks import add_eval_masks, add_gf_sweep, add_refine
from .methods import add_corloc, add_eval, add_segment
from .notebook import add_notebook
from .paper import add_paper
from .train import add_train

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paperlib`` command."""
    parser = argparse.ArgumentParser(
        prog="paperlib",
        description="Two Tricks to Improve Unsupervised Segmentation Learning: tools and evaluation.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_refine, add_eval_masks, add_segment, add_eval, add_corloc, add_train,
                add_data, add_gf_sweep, add_notebook, add_paper, add_book):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    args.cli_main = main   # commands that run other commands (``paper``) call back through this
    try:
        return args.run(args)
    except InputError as err:
        print(f"paperlib: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        print(f"paperlib: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("paperlib: interrupted", file=sys.stderr)
        return 130

