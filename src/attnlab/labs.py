"""Moved to `attnlab.exercises.labs`; this name stays so that notebooks saved before the move still run.

`from attnlab import labs` gives the very module `attnlab.exercises.labs` (not a copy), so
anything set or patched through either name is seen through both. New code imports
`from attnlab.exercises import labs`.
"""

import sys

from attnlab.exercises import labs as _moved

sys.modules[__name__] = _moved
