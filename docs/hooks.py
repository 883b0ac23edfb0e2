"""MkDocs hooks (mkdocs.yml ``hooks:``): a nav that tolerates pages yet to come, and the
committed reference reports served beside the pages.

- ``on_config``: a nav entry whose page does not exist is dropped, and a page under
  ``guides/`` or ``concepts/`` that the nav does not name is appended to its section (titled
  by its first heading), so a new guide needs no edit of mkdocs.yml and a missing one does not
  break the strict build.
- ``on_files``: ``reports/`` (the committed reference reports: HTML pages, figures, JSON, CSV)
  is published under ``reports/`` of the site, so the docs link the very files the README does
  and a renamed report breaks the strict build instead of a reader's click.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SECTIONS = {"Concepts": "concepts", "Guides": "guides"}
PUBLISHED = ("reports",)
SUFFIXES = {".html", ".png", ".json", ".csv", ".toml"}


def page_title(path: Path) -> str:
    """The page's first Markdown heading, or its file name."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").capitalize()


def tolerant_nav(nav: list[Any], docs: Path = DOCS) -> list[Any]:
    """``nav`` without entries whose page is missing, with unnamed section pages appended."""
    named: set[str] = set()

    def keep(entries: list[Any]) -> list[Any]:
        kept = []
        for entry in entries:
            ((title, target),) = entry.items() if isinstance(entry, dict) else (("", entry),)
            if isinstance(target, list):
                kept.append({title: keep(target)})
            elif (docs / target).is_file():
                named.add(target)
                kept.append({title: target} if title else target)
        return kept

    result = keep(nav)
    for entry in result:
        if isinstance(entry, dict):
            ((title, target),) = entry.items()
            folder = SECTIONS.get(title)
            if folder and isinstance(target, list):
                for page in sorted((docs / folder).glob("*.md")):
                    relative = f"{folder}/{page.name}"
                    if relative not in named:
                        target.append({page_title(page): relative})
    return result


def on_config(config: Any) -> Any:
    config["nav"] = tolerant_nav(config["nav"])
    return config


def on_files(files: Files, config: Any) -> Files:
    for folder in PUBLISHED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES:
                uri = path.relative_to(ROOT).as_posix()
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
