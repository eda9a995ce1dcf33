"""What every command line shares: one-line errors with exit code 2, and typed flag parsers.

argparse already exits 2 on a bad flag, but prints a usage block first; a user scanning a log (or a
test reading stderr) wants one line that names the flag and what it accepts. The libraries
(nas.orchestration, nas.report) raise `SettingError`s naming their settings; `setting_errors` turns
them into the command's `--flag: ...` line.
"""

from __future__ import annotations

import argparse
import math
import re
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


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30m', '2h', '1h30m', '90s', '600' (seconds) -> seconds."""
    match = _DURATION.match(text or "")
    if not text or not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"cannot read duration {text!r}; accepted: 90s, 30m, 2h, 1h30m, 1d, or seconds")
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    seconds = ((d * 24 + h) * 60 + m) * 60 + s
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


_MS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ms|s)?\s*$", re.IGNORECASE)


def parse_ms(text: str) -> float:
    """'20ms', '20 ms', '0.02s', '20' (milliseconds) -> 20.0."""
    match = _MS.match(text or "")
    if not match:
        raise ValueError(f"cannot read latency {text!r}; accepted: 20ms, 0.02s, or milliseconds")
    value = float(match[1]) * (1000.0 if (match[2] or "").lower() == "s" else 1.0)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"latency {text!r} must be a positive number of milliseconds")
    return value


_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\]"


def parse_host_port(text: str) -> str:
    match = re.fullmatch(rf"(?:ray://)?(?:{_HOST}):(\d{{1,5}})", text)
    if text == "auto" or (match and 0 < int(match[1]) <= 65535):
        return text
    raise ValueError(f"expected HOST:PORT (port 1-65535), ray://HOST:PORT or auto, got {text!r}")


def parse_host(text: str) -> str:
    if re.fullmatch(_HOST, text) or text in ("0.0.0.0", "::"):
        return text
    raise ValueError(f"expected a host name or IP address (default 127.0.0.1), got {text!r}")


# nas.search's flag types
gpu_share = float_where("a number in [0, 1] (a share of one GPU)", lambda v: 0 <= v <= 1)
tolerance = float_where("a fraction in (0, 1)", lambda v: 0 < v < 1)
port = int_where("a port number 1-65535", lambda v: 0 < v <= 65535)
reduction_factor = int_where("an integer >= 2 (ASHA keeps 1/factor of the trials per rung)", lambda v: v >= 2)
