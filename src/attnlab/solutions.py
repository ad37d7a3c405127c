"""Moved to `attnlab.exercises.solutions`; this name stays so that notebooks saved before the move still run.

`from attnlab import solutions` gives the very module `attnlab.exercises.solutions` (not a copy), so
anything set or patched through either name is seen through both. New code imports
`from attnlab.exercises import solutions`.
"""

import sys

from attnlab.exercises import solutions as _moved

sys.modules[__name__] = _moved
