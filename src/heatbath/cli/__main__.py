"""`python -m heatbath.cli` (what torchrun launches)."""

import sys

from heatbath.cli import main

sys.exit(main())
