"""Scores (paper Sec. 5.2): saliency metrics, CorLoc, and scoring datasets and folders.

    metrics    Acc, IoU, max F-beta, MAE; IoU by object size
    corloc     box IoU and CorLoc
    datasets   a method scored on a saliency dataset, raw and refined in one pass
    folders    a folder of predicted masks scored against ground truth
    protocols  one set of predictions under every evaluation convention and other codebases' protocols
"""
