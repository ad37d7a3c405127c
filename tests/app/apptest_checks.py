"""What every AppTest page test asks of a finished page run (imported by the page tests)."""

from __future__ import annotations


def page_ok(at) -> None:
    """The page ran to its end without an exception or an error box."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def messages(at) -> str:
    """The page's info and warning boxes, joined."""
    return " | ".join(e.value for e in [*at.info, *at.warning])


def images(at) -> int:
    """How many images (figures) the page shows."""
    return len(at.get("image"))
