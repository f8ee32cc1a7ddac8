"""The one compiled part of paperlib: the count-border guided filter (paperlib/refine/_gf_count.c).

Everything else about the package lives in pyproject.toml. The extension is optional: without a
C compiler the install still succeeds, and paperlib.refine.gf_image filters with OpenCV's box
filter instead (the same q, about 1.2x OpenCV's own guided filter's time where the kernel takes
0.55-0.67x; README "Benchmarks").
"""

import sys

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "paperlib.refine._gf_count", ["paperlib/refine/_gf_count.c"],
    # -O3 vectorises the column loops with older gcc too; MSVC's default /O2 already does.
    extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
    optional=True,
)])
