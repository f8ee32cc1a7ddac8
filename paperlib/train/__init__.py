"""Training the Sempart head with both tricks (paper Sec. 5).

    config    TrainConfig, the presets and the command-line mapping's values
    data      seeded randomness, augmentation, data order
    state     checkpoints, random states, logs; resuming
    runtime   devices and data-parallel processes (torchrun, synchronised BatchNorm)
    loop      train(): the step and the loop (``python -m paperlib.train`` runs it alone)
"""
