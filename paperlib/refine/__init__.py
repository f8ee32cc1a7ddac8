"""Trick 1 and its baseline: refining a soft mask with its image (paper Sec. 4, Table 5).

    settings           GuidedFilterSettings and PAPER_GF, the filter's rules, without torch
    guided_filter      the guided filter (He et al.) in torch: batched, differentiable, any device
    gf_image           the same in float32 for one image (masks' path) or a stack: a compiled
                       count-border kernel (_gf_count.c, built at install), else OpenCV's box filter
    bilateral_solver   the fast bilateral solver (Barron & Poole), TokenCut's "+BF"
    masks              refine_mask on one image, and a folder of masks refined with its images
"""
