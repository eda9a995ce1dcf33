"""What every command line shares: one-line errors with exit code 2, and typed flag parsers.

argparse already exits 2 on a bad flag, but prints a usage block first; a user scanning a log (or a
test reading stderr) wants one line that names the flag and what it accepts. The libraries
(nas.orchestration, nas.report) raise `SettingError`s naming their settings; `setting_errors` turns
them into the command's `--flag: ...` line.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from .errors import SettingError

T = TypeVar("T")


class UsageError(Exception):
    """A bad value from the user: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's hook for bad flags
        if message.startswith("argument --") and message.endswith(": expected one argument"):
            # `--budget -4G`: argparse took the value for a flag. Say how to pass it (and have it checked).
            flag = message.split()[1].rstrip(":").split("/")[0]
            message += f" (a value that starts with '-' is written {flag}=VALUE)"
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a command's main, turning UsageError and ValueError-from-input into one-line exits."""
    prog = sys.argv[0] if argv is None else "nas"
    try:
        return int(main(argv) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def flag_of(setting: str, flags: dict[str, str | None]) -> str | None:
    """A library setting's flag: `flags[setting]` where given (None: a positional argument), else
    `--` + the setting with dashes (`grace_epochs` -> `--grace-epochs`)."""
    return flags[setting] if setting in flags else "--" + setting.replace("_", "-")


@contextmanager
def setting_errors(flags: dict[str, str | None]) -> Iterator[None]:
    """Turn a library's SettingError into a one-line UsageError in this command's flag names."""
    try:
        yield
    except SettingError as exc:
        raise UsageError(exc.describe(lambda setting: flag_of(setting, flags))) from None


def int_where(accepted: str, ok: Callable[[int], bool]) -> Callable[[str], int]:
    """An argparse type for integers satisfying `ok`; the error says `expected <accepted>, got ...`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    return parse


def float_where(accepted: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type for finite numbers satisfying `ok` (nan and inf are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    return parse


positive_int = int_where("a positive integer", lambda v: v > 0)
non_negative_int = int_where("an integer >= 0", lambda v: v >= 0)
positive_float = float_where("a positive number", lambda v: v > 0)
non_negative_float = float_where("a number >= 0", lambda v: v >= 0)


def int_list(text: str) -> list[int]:
    """'3,4,6,3' -> [3, 4, 6, 3]; every entry a positive integer."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def choice(options: tuple[str, ...] | list[str]) -> Callable[[str], str]:
    """Like argparse's choices=, but with a one-line message listing what is accepted."""

    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"unknown value {text!r}; accepted: {', '.join(options)}")
        return text

    return parse


def wrap(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Adapt a parser that raises ValueError (e.g. parse_budget) to argparse's error type."""

    def parse_arg(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_arg
