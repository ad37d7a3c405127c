"""Moved to `attnlab.exercises.check`; this name stays so that notebooks saved before the move still run.

`from attnlab import check` gives the very module `attnlab.exercises.check` (not a copy), so
anything set or patched through either name is seen through both. New code imports
`from attnlab.exercises import check`.
"""

import sys

from attnlab.exercises import check as _moved

sys.modules[__name__] = _moved
