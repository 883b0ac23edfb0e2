"""A plug-in module whose import fails (``plugin_broken_import:anything``)."""

import a_module_that_does_not_exist  # noqa: F401
