"""`python -m attnlab` runs the CLI (also what torchrun launches)."""

import sys

from attnlab.cli import main

sys.exit(main())
