"""Training the Sempart head with both tricks (paper Sec. 5).

    config    TrainConfig, the presets and the command-line mapping's values
    data      seeded randomness, augmentation, data order
    state     checkpoints, random states, logs; resuming
    runtime   devices and data-parallel processes (torchrun, synchronised BatchNorm)
    step      train_step (one AdamW step with both tricks) and validate
    loop      train(): data, head, steps and files of a run (``python -m paperlib.train``)
"""
