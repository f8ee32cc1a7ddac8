"""Pictures and interactive explorers.

    gf_explorer       trick 1 over radius and eps on one image (ipywidgets)
    crop_explorer     trick 2's maps for one training step's box (ipywidgets)
    crop_predictors   what produces the masks the crop explorer shows
    theory_figures    figures of the background notebook
"""
