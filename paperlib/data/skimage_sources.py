"""The pictures that ship inside the scikit-image wheel, as sources for the synthetic set.

Every loader named here reads a file bundled with scikit-image, so nothing is downloaded; the
ones that need pooch (lily, eagle, brain, ...) are left out on purpose.

Public API
----------
``load_source(name) -> ndarray``
    one bundled scikit-image picture, cached; never downloads.
``SKIMAGE_SOURCES``, ``BACKGROUND_SOURCES``, ``FILL_SOURCES``, ``SILHOUETTE_SOURCES``
    every loader name used, and those used for backgrounds, object fills and silhouettes.

:mod:`paperlib.data.synth_sample` composes its samples from these; any change here that alters the
pictures must bump :data:`paperlib.data.synth.SYNTH_VERSION`.
"""

from __future__ import annotations

import functools

import numpy as np

from ..checks import check_choice

# skimage.data loaders whose files ship inside the scikit-image wheel (checked offline with
# scikit-image 0.25; the optional-pooch ones such as lily, eagle or brain are left out).
BACKGROUND_SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                      "stereo_motorcycle", "immunohistochemistry", "camera", "moon", "coins",
                      "brick", "grass", "gravel")
FILL_SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                "stereo_motorcycle", "immunohistochemistry", "colorwheel", "brick", "grass",
                "gravel", "camera", "moon")
SILHOUETTE_SOURCES = ("horse",)
SKIMAGE_SOURCES = tuple(sorted(set(BACKGROUND_SOURCES + FILL_SOURCES + SILHOUETTE_SOURCES)))


@functools.lru_cache(maxsize=None)
def load_source(name: str) -> np.ndarray:
    """Load one bundled scikit-image picture by loader name (cached; never downloads).

    Args:
        name: one of :data:`SKIMAGE_SOURCES`.

    Returns:
        uint8 (h, w, 3) for colour pictures, (h, w) for grey ones, bool (h, w) for the horse
        silhouette (True on the horse).
    """
    import skimage.data

    check_choice("source", name, SKIMAGE_SOURCES)
    if name == "horse":
        return np.ascontiguousarray(~skimage.data.horse())  # the file is a black horse on white
    if name == "stereo_motorcycle":
        return np.ascontiguousarray(skimage.data.stereo_motorcycle()[0])  # (left, right, disparity)
    return np.ascontiguousarray(getattr(skimage.data, name)(), dtype=np.uint8)
