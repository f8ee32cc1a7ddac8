"""``python -m paperlib.train ...`` and ``torchrun -m paperlib.train ...``: the train command on its own."""

import sys

from ..cli.train import main_train

sys.exit(main_train())
