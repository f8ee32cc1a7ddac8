"""The training objective (paper eqs. 2-8) and trick 2's crop-zoom consistency.

    settings    the token graph's thresholds (eq. 2) and LossWeights (eq. 8); no torch
    ncut        the token affinity (eq. 2), the soft normalized cut (eq. 3), eigenvectors
    graph_tv    graph total variation of the fine and coarse masks (eqs. 5-7)
    objective   the Sempart loss (eq. 8): its terms and the SR consistency (eq. 4)
    crop_zoom   trick 2: crop boxes, zoom, the guided-filtered teacher target, L_eq
"""
