"""The data: saliency and box datasets, synthetic and sampled sets, degraded masks, downloads.

    saliency         DUTS-TE, DUT-OMRON, ECSSD, DUTS-TR in their official layouts
    boxes            VOC07, VOC12, COCO20K boxes for CorLoc
    degrade          ground truth spoiled the way predictions are (blocky, soft, blurred)
    synth, synth_sample, silhouettes, skimage_sources   the offline synthetic sets
    sample           a fixed subset of an official set
    release/         official archives: sources, download, checksums, unpacking, verification
"""
