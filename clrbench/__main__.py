"""``python -m clrbench``."""

from clrbench.cli.main import main

raise SystemExit(main())
