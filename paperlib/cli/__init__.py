"""The ``paperlib`` command line: argument parsing only; the work is in the package.

    main       the parser and the exit codes (``paperlib``, ``python -m paperlib.cli``)
    methods    segment, eval, corloc
    masks      refine, eval-masks, gf-sweep
    baselines  baselines (the weight-free table and the GF against BF study)
    data       data download, verify, synth, sample, degrade
    train      train (``python -m paperlib.train`` too)
    notebook, paper, book   the notebooks, the whole paper, the built site
"""
