"""``python -m clrbench`` (the installed ``clrbench`` command is the same program)."""

from __future__ import annotations

import sys
from types import ModuleType


def namespace_hint(package: ModuleType) -> str | None:
    """None, or the one line for ``python -m clrbench`` run from the folder that *holds* a clone
    named ``clrbench``: Python takes the clone's folder (no ``__init__.py``) for a namespace
    package ahead of the installed one, and nothing of clrbench can be imported from it."""
    if getattr(package, "__file__", None) is not None:
        return None
    where = ", ".join(str(p) for p in getattr(package, "__path__", [])) or "a folder"
    return (
        f"clrbench: error: python -m clrbench found {where} (the clone's folder?) instead of "
        "the package; run it from inside the clone, or use the installed `clrbench` command"
    )


if __name__ == "__main__":
    hint = namespace_hint(sys.modules["clrbench"])
    if hint:
        print(hint, file=sys.stderr)
        raise SystemExit(2)
    from clrbench.cli.main import main

    raise SystemExit(main())
