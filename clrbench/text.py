"""Small helpers for messages a person reads: counts with the right plural, close-match hints,
signed numbers."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MINUS = "\u2212"  # "−", the minus sign of typeset numbers (the hyphen-minus "-" is shorter)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 seed``, ``2 seeds``, ``0 seeds``; ``count`` formatted with thousands separators."""
    word = noun if count == 1 else (plural_form or noun + "s")
    return f"{count:,} {word}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string if none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def number(value: float, spec: str = "g") -> str:
    """``format(value, spec)`` for a person to read: a negative number with the minus sign
    "−", as every table and message shows it, and no "-0.00" for a value that rounds to zero.
    (CSV and JSON keep plain numbers.)"""
    sign = "+" if spec.startswith("+") else ""
    rest = spec.removeprefix("+")
    if rest.endswith("d"):
        text = format(int(value), spec)
    else:  # a float: "z" makes a negative value that rounds to zero 0.00
        text = format(float(value), f"{sign}z{rest}")
    return MINUS + text[1:] if text.startswith("-") else text


def signed(value: float, spec: str = ".2f") -> str:
    """A difference with its sign always shown: ``+0.81``, ``−0.12``, ``+0.00``."""
    return number(value, "+" + spec)
