"""Running the notebooks: typed parameters, the in-kernel session, the runner and provenance.

    params       the parameters cell read, typed and checked
    session      start(name, globals()): data, tags, figures and tables with provenance
    run          paperlib notebook run NAME: jupytext source -> executed notebook
    provenance   <file>.provenance.json sidecars and results/MANIFEST.json
"""
