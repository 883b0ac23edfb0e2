"""The one formatting module: how every message, table and JSON file says a number.

Counts with the right plural, close-match hints, signed numbers with the typeset minus,
percentages and percentage points (``–`` when undefined), p-values, infinity ("never" in text)
and the one JSON convention for undefined and infinite values (:func:`json_value`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

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


def defined(value: Any) -> bool:
    """A finite number (not None, NaN or infinite)."""
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def pct(fraction: float, digits: int = 2) -> str:
    """A fraction as a percentage without its sign: ``98.12``; ``–`` when undefined."""
    return f"{fraction * 100:.{digits}f}" if defined(fraction) else "–"


def percent(fraction: float) -> str:
    """A level such as chance as a short percentage: ``10%``, ``33.3%``, ``0.1%``."""
    return f"{fraction * 100:.3g}%"


def pp(fraction: float, digits: int = 2, unit: bool = False) -> str:
    """A difference of accuracies in percentage points with its sign, ``+0.12`` (``+0.12 pp``
    with ``unit``); ``–`` when undefined."""
    if not defined(fraction):
        return "–"
    text = signed(fraction * 100, f".{digits}f")
    return f"{text} pp" if unit else text


def points(fraction: float, digits: int = 2) -> str:
    """:func:`pp` with its unit, for prose: ``+0.12 pp``."""
    return pp(fraction, digits, unit=True)


def format_p(p: float) -> str:
    """A p-value with three significant digits (never rounded across 0.05); ``n/a`` when
    undefined, ``< 0.0001`` below that."""
    if not defined(p):
        return "n/a"
    return "< 0.0001" if p < 1e-4 else f"{p:.3g}"


def p_is(p: float) -> str:
    """A p-value as prose says it: ``= 0.031``, ``< 0.0001``, ``= n/a``."""
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def finite(value: Any) -> bool:
    """A finite number, numpy's included (not None, NaN, infinite or a non-number)."""
    try:
        return math.isfinite(value)
    except TypeError:
        return False


def never_or(value: float, spec: str) -> str:
    """A count or time that may be infinite (a target never reached): ``never`` for +inf,
    ``–`` when undefined."""
    if value == math.inf:
        return "never"
    return number(value, spec) if defined(value) else "–"


JSON_CONVENTION = 'null: not defined (NaN); "inf" / "-inf": infinite (never reached)'


def json_value(value: Any) -> Any:
    """The one JSON convention of every file clrbench writes: NaN and None as null, infinity
    as the string ``"inf"`` (``"-inf"``), numpy scalars as Python numbers."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if value is None or type(value).__name__ == "NAType":
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def json_plain(value: Any) -> Any:
    """:func:`json_value` through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {str(k): json_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_plain(v) for v in value]
    return json_value(value)


def json_number(value: Any) -> float | None:
    """The inverse of :func:`json_value` for a number: null -> NaN, "inf" -> infinity."""
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return math.inf if value == "inf" else -math.inf
    return float(value)
