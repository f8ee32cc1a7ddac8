"""Trick 1 and its baseline: refining a soft mask with its image (paper Sec. 4, Table 5).

    guided_filter      the guided filter (He et al.), GuidedFilterSettings and PAPER_GF
    bilateral_solver   the fast bilateral solver (Barron & Poole), TokenCut's "+BF"
    masks              refine_mask on one image, and a folder of masks refined with its images
"""
