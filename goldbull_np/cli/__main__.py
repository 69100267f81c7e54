"""``python -m goldbull_np.cli``."""
import sys

from . import main

sys.exit(main())
