"""paperlib: "Two Tricks to Improve Unsupervised Segmentation Learning" as a package.

Shape vocabulary, used in every docstring and comment of the package:

    B  batch size
    C  channels (3 for an RGB image, 1 for a mask)
    D  feature dimension of a backbone token (384 for ViT-S)
    H x W  pixel grid of an image or a fine mask
    h x w  patch grid of a backbone (H / patch, W / patch)
    N  number of tokens, N = h * w

Citations of the form ``docs/paper_and_code.md#guided-filter`` point to the repository's
method notes: the paper's equations, where the authors' released code differs, and the
choices made here, section by section.

Importing the package does nothing: no tensors, no devices, no heavy imports.
"""

__version__ = "0.1.0"
