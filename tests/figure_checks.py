"""What every figure the notebooks save must show: labelled axes, colour bars on maps, a title.

Shared by the tests of the plotting functions (tables, size_figures, explore, crop_explorer,
theory_figures).
"""

from __future__ import annotations


def panels(fig) -> list:
    """The figure's axes without its colour bars' axes."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def map_colorbar(ax):
    """The colour bar of the image drawn on ``ax`` (None when it has none)."""
    assert ax.images, f"panel {ax.get_title()!r} draws no image"
    return ax.images[-1].colorbar


def assert_labelled_map(ax, *, diverging: bool = False) -> None:
    """A map: a title, and a colour bar that names its quantity (symmetric about 0 if diverging)."""
    assert ax.get_title(), "a map without a title"
    bar = map_colorbar(ax)
    assert bar is not None, f"map {ax.get_title()!r} has no colour bar"
    assert bar.ax.get_ylabel(), f"the colour bar of {ax.get_title()!r} has no label"
    if diverging:
        low, high = ax.images[-1].get_clim()
        assert low < 0 < high and abs(low + high) < 1e-9 * max(1.0, abs(high)), \
            f"difference map {ax.get_title()!r} is not centred on 0: {low}, {high}"


def assert_labelled_plot(ax, *, x: bool = True) -> None:
    """A plot of quantities: a title, a y label with its unit in parentheses, an x label."""
    assert ax.get_title(), "a plot without a title"
    ylabel = ax.get_ylabel()
    assert ylabel and "(" in ylabel, f"y axis of {ax.get_title()!r} lacks a label with a unit: {ylabel!r}"
    if x:
        assert ax.get_xlabel(), f"x axis of {ax.get_title()!r} has no label"


def stray_outputs(executed) -> list[str]:
    """The text outputs of an executed notebook that are a stray repr (a cell ending in a Path or a
    bare matplotlib object): what a reader would see as ``PosixPath('...')``."""
    import json
    import re
    from pathlib import Path

    stray = re.compile(r"^(PosixPath|WindowsPath|Path)\(|^\[?<matplotlib\.|^Text\(")
    found = []
    for cell in json.loads(Path(executed).read_text())["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "execute_result":
                continue
            text = "".join(output.get("data", {}).get("text/plain", ""))
            if stray.match(text):
                found.append(text[:120])
    return found
