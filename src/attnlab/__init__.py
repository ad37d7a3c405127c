"""attnlab: a hands-on transformer workshop toolkit.

Two engines teach the same models: readable NumPy with hand-written backward
passes (`attnlab.scratch`) and idiomatic PyTorch (`attnlab.nn`, `attnlab.models`).
Submodules import lazily so that `import attnlab` stays cheap.
"""

__version__ = "0.1.0"

from attnlab.errors import AttnlabError  # noqa: F401  (the one exception users catch)
