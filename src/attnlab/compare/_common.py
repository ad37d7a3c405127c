"""Helpers shared by the comparisons."""

from __future__ import annotations

from attnlab.errors import ConfigError


def check_device(device: str) -> str:
    """The device `device` resolves to ("auto" -> cuda, mps or cpu), checked before any training.

    Raises:
        ConfigError: an unknown or unavailable device (the message names the --device flag).
    """
    from attnlab.utils import select_device

    try:
        return select_device(device)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--train.device=", "--device ")) from None
