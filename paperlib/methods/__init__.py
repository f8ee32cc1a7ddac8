"""Segmentation methods behind one interface, and what a prediction becomes.

    base          Method, Prediction, EvalView, ImageByImage
    registry      build_method(name): tokencut, sempart, masks, centre, spectral, finegrained
    tokencut      TokenCut (training-free baseline)
    sempart       a trained head as a method, with its evaluation protocol
    saved_masks   another method's saved masks as a method
    centre        the centre prior: a Gaussian in the middle of the frame, the floor to beat
    static_saliency  OpenCV's static saliency baselines: spectral residual, fine grained
    boxes         a mask's object box (CorLoc prediction)
    refined       a prediction refined (trick 1, bilateral solver) and its box
    segment       masks and overlays for a user's own images
"""
