"""argparse types for numbers with a range, shared by run_load_tests.py and the locustfile's options:
bad input gives one clear line ("must be above 0, got -3"), never a traceback."""

from __future__ import annotations

import argparse
import re
from typing import Callable


def _ranged(kind: type, noun: str, accept: Callable[[float], bool], rule: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if not accept(value):  # `not`: NaN fails every comparison
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse and Locust's web UI name the type by it
    return parse


def positive(kind: type, noun: str):
    """A number of `kind` above 0; `noun` names it in errors ("a whole number")."""
    return _ranged(kind, noun, lambda v: v > 0, "above 0")


def non_negative(kind: type, noun: str):
    """A number of `kind`, 0 or more."""
    return _ranged(kind, noun, lambda v: v >= 0, "0 or more")


positive_int = positive(int, "a whole number")
positive_float = positive(float, "a number")
non_negative_int = non_negative(int, "a whole number")
non_negative_float = non_negative(float, "a number")
fraction = _ranged(float, "a number", lambda v: 0.0 <= v <= 1.0, "within 0..1")


def parse_duration(text: str) -> int:
    """'90', '90s', '2m', '1h30m' -> seconds (Locust's -t format; argparse type)."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 45s, 2m, 1h30m)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError("duration must be positive")
    return total
