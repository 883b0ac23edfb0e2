"""The reports' sentences, put into words by templates: Python decides, the templates say it.

Each report's analysis hands small records (a verdict, a group of outcomes, a count) to the
macros of ``clrbench/templates/words/<report>.j2``; :func:`say` calls one and returns its text
as one line, every run of whitespace one space, so a template wraps its sentences freely. The
numbers are formatted by the filters of the one formatting module, :mod:`clrbench.text`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from clrbench import text

WORDS = Path(__file__).resolve().parents[1] / "templates" / "words"


@functools.cache
def environment() -> jinja2.Environment:
    """Plain text (no escaping: the page templates escape), and an undefined name is an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(WORDS),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters.update(
        plural=text.plural,
        points=text.points,
        pp=text.pp,
        p_is=text.p_is,
        format_p=text.format_p,
        pct=text.pct,
        percent=text.percent,
        number=text.number,
        signed=text.signed,
    )
    env.tests["finite"] = text.finite
    return env


def say(report: str, macro: str, *args: Any, **kwargs: Any) -> str:
    """The text of macro ``macro`` of ``words/<report>.j2`` called with ``args``, on one line."""
    module = environment().get_template(f"{report}.j2").module
    return " ".join(str(getattr(module, macro)(*args, **kwargs)).split())
