"""The one error type nas's libraries raise for a bad setting; the commands turn it into `--flag: ...`.

A library knows its settings by their field names (`grace_epochs`, `run_dir`), not by the command line
that set them; the message may name other settings as `{field}` placeholders, so that each reader
sees names it knows: `str(exc)` gives field names, a command gives its flags (`describe(flag_of)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class SettingError(ValueError):
    """`setting` cannot be used: `message` says why (`{field}` placeholders name other settings)."""

    def __init__(self, setting: str, message: str, **values: Any) -> None:
        self.setting, self.message, self.values = setting, message, values
        super().__init__(self.describe(lambda name: name))

    def describe(self, name_of: Callable[[str], str | None]) -> str:
        """One line: the setting's name as `name_of` gives it, then the message. A setting whose name
        is None (a positional argument, which the message already quotes) gets no prefix."""
        text = self.message.format_map(_Names(self.values, name_of))
        name = name_of(self.setting)
        return f"{name}: {text}" if name else text


class _Names(dict):
    """Values first; any other placeholder is a setting, shown under `name_of`'s name for it."""

    def __init__(self, values: dict[str, Any], name_of: Callable[[str], str | None]) -> None:
        super().__init__(values)
        self.name_of = name_of

    def __missing__(self, key: str) -> str:
        return self.name_of(key) or key
