"""``python -m clrbench``."""

from clrbench.cli import main

raise SystemExit(main())
