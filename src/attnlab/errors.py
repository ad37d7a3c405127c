"""Exceptions for user-facing problems.

Every error a user can cause (a bad flag, a missing file, a corrupt checkpoint, a
character the tokenizer does not know) raises a subclass of `AttnlabError` whose
message says what was wrong and how to fix it. The CLI prints that message on one
line and exits with code 2; library users can catch `AttnlabError`.
Programming errors inside attnlab stay ordinary exceptions (and tracebacks).
"""

from __future__ import annotations


class AttnlabError(Exception):
    """Base class for errors caused by user input (flags, files, data, settings)."""


class ConfigError(AttnlabError, ValueError):
    """A configuration key, value or file is invalid."""


class DataError(AttnlabError, ValueError):
    """A data file or data set is missing, corrupt or has the wrong shape."""


class CheckpointError(AttnlabError, ValueError):
    """A checkpoint folder is missing, incomplete, corrupt or of the wrong kind."""


class TokenizerError(AttnlabError, ValueError):
    """Text cannot be encoded, or a tokenizer file cannot be read."""


class UnknownCharactersError(TokenizerError):
    """The text holds characters that are not in the tokenizer's vocabulary."""

    def __init__(self, chars: list[str] | set[str], where: str = "text"):
        self.chars = sorted(set(chars))
        shown = ", ".join(repr(c) for c in self.chars[:20])
        more = f" (and {len(self.chars) - 20} more)" if len(self.chars) > 20 else ""
        super().__init__(
            f"the {where} contains {len(self.chars)} character(s) this tokenizer does not know: "
            f"{shown}{more}; remove them, or train on data that includes them"
        )


class DownloadError(AttnlabError, OSError):
    """A download failed, or its checksum did not match."""
