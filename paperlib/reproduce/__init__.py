"""The whole paper in one command (``paperlib paper``): plan, cost estimate, run.

    plan   what a paper run does, from its options
    cost   measured time estimate before the long work
    run    weights, data, eval files, notebooks, the book
"""
