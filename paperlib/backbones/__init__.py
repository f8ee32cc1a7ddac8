"""Frozen feature extractors (paper Sec. 3): what the head and TokenCut see of an image.

    catalog      the names and their facts (patch, dim, weights), ImageNet constants; no torch
    registry     load_backbone(name): a name and a weights source in, a frozen backbone out
    features     the Backbone interface and the Features it returns; ImageNet normalisation
    vit          DINO ViTs (timm), keys of the last block
    offline      the `offline` backbone: patch colour and a border-contrast prior, no weights
    filterbank   the first offline backbone: colour and texture cues per patch, no weights
    weights      official checkpoint files: reading, checking, finding
    cache        on-disk cache of keys, reused across runs
"""
