"""The paper's artefacts: experiments, tables, the reported numbers, the size figures, the filter sweep.

    experiments    the runs behind Tables 1-4
    tables         tables of our numbers beside the paper's
    reported       the paper's own reported values, with their source
    size_figures   IoU by object size (Figs. 6-8)
    gf_sweep       where the guided filter pays, over radius and eps
    baselines      every weight-free segmenter side by side; GF against BF on soft coarse masks
"""
