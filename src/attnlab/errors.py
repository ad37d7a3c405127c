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


# What to do about an operating-system error, by errno name (see `describe_os_error`).
_OS_ERROR_HINTS = {
    "EROFS": "choose a folder on a writable disk",
    "EACCES": "choose a path you may use, or change its permissions",
    "EPERM": "choose a path you may use, or change its permissions",
    "ENOSPC": "free some disk space, or choose another disk",
    "EDQUOT": "free some space in your disk quota, or choose another disk",
    "ENAMETOOLONG": "use a shorter name",
    "ENOTDIR": "a part of the path is a file, not a folder; fix the path",
    "EISDIR": "it is a folder; give a file inside it",
    "ELOOP": "the path goes through a symbolic link that points back to itself; fix or remove the link",
    "ENOENT": "check the path",
    "EEXIST": "choose another name, or remove what is there",
    "EMFILE": "too many files are open; close other programs and try again",
    "EBUSY": "another program is using it; try again when it is done",
}


def describe_os_error(error: OSError, action: str = "") -> str:
    """One line for an `OSError`: the path(s), the operating system's reason and a fix.

    Args:
        error: e.g. `OSError(errno.EROFS, "Read-only file system", "runs/x")`.
        action: what failed, e.g. "cannot write"; default none.
    Returns:
        e.g. `cannot write 'runs/x': Read-only file system (EROFS); choose a folder on a writable disk`.
    """
    import errno as errno_module

    name = errno_module.errorcode.get(error.errno or -1, "")
    reason = error.strerror or str(error) or type(error).__name__
    where = ""
    if error.filename is not None:
        where = repr(str(error.filename) if not isinstance(error.filename, bytes) else error.filename)
        if getattr(error, "filename2", None) is not None:
            where += f" -> {str(error.filename2)!r}"
    head = " ".join(p for p in (action, where) if p)
    line = f"{head}: {reason}" if head else reason
    if name:
        line += f" ({name})"
    hint = _OS_ERROR_HINTS.get(name)
    return f"{line}; {hint}" if hint else line


class TrainingDivergedError(AttnlabError, FloatingPointError):
    """The training loss became NaN or infinite (the settings, usually the learning rate, are to blame)."""
