"""The guided filter's settings and their rules, with no torch (the CLI and configs read them).

Public API
----------
``GuidedFilterSettings(radius=9, eps=1e-3, border="count")``
    the filter's hyper-parameters, checked at construction.
``PAPER_GF``
    the paper's settings (its released code's: it prints no radius or eps), the one home of
    every default in the package.
``BORDERS``
    the border rules: ``"count"`` (the paper's), ``"reflect"`` (OpenCV's ximgproc), ``"reflect_101"``
    (kornia's); :mod:`paperlib.refine.guided_filter` says what each does.
``check_radius(radius)``, ``check_settings(radius, eps, border)``
    the rules every entry point applies, as one-line ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_choice, check_positive, is_int, is_number, require

BORDERS = ("count", "reflect", "reflect_101")


def check_radius(radius) -> None:
    """The one radius rule of every guided-filter entry point: an int (not a bool), r >= 0.

    r = 0 is allowed: a 1x1 window has var_I = cov_Ip = 0, so the filter returns src exactly,
    which is a valid (if idle) setting and the natural "no filter" end of a radius sweep.
    """
    require(is_int(radius),
            f"radius must be an int, got {type(radius).__name__}")
    require(radius >= 0, f"radius must be >= 0 (0 is a 1x1 window, which returns src), got {radius}")


def check_settings(radius, eps, border) -> None:
    """The radius rule, eps a finite real > 0, border one of :data:`BORDERS`."""
    check_radius(radius)
    require(is_number(eps),
            f"eps must be a real number, got {type(eps).__name__}")
    check_positive("eps", eps)
    require(isinstance(border, str), f"border must be a str, got {type(border).__name__}")
    check_choice("border", border, BORDERS)


@dataclass(frozen=True)
class GuidedFilterSettings:
    """The guided filter's hyper-parameters; :data:`PAPER_GF` holds the paper's, the one home of them.

    The paper prints no radius and no eps (docs/paper_and_code.md, "Guided filter"); the defaults
    are its released code's, and every default in the package (``guided_filter``, ``RefineSettings``, the CLI, the crop-zoom
    teacher, the explorer) is read from here.
    """

    radius: int = 9          # a 19 x 19 window at the 320 x 320 input: the authors' released code
    eps: float = 1e-3        # in squared units of the [0, 1] gray guide: the released code's epsilon
    border: str = "count"    # windows truncated at the image border: the released code's box filter

    def __post_init__(self) -> None:
        check_settings(self.radius, self.eps, self.border)


# The paper's guided filter (released code): radius 9, eps 1e-3, truncated border windows.
PAPER_GF = GuidedFilterSettings()
