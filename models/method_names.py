"""Names the command line needs before any method is loaded: the default method, ``--set``."""

from __future__ import annotations

# the method run when none is chosen (a name in models.methods.METHODS)
DEFAULT_METHOD = "local"
# the grammar of a ``--set`` option (models.methods.parse_set_options reads it)
SET_GRAMMAR = "[METHOD:]KEY=VALUE"
