"""What a wheel carries besides Python files: every template the reports load must match a
``[tool.setuptools.package-data]`` glob, or an installed (non-editable) clrbench renders no
report. (A template in a new subfolder, such as ``templates/words/``, is what a glob misses.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_template_is_in_the_wheels_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["clrbench"]
    package = REPO / "clrbench"
    templates = [p for p in (package / "templates").rglob("*") if p.is_file()]
    assert any(p.parent.name == "words" for p in templates)
    packaged = {p for g in globs for p in package.glob(g)}  # a glob's * stops at a "/"
    missed = [str(p.relative_to(package)) for p in templates if p not in packaged]
    assert not missed, f"not packaged: {missed}"
