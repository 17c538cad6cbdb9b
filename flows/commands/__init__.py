"""One module per ``coalign`` sub-command (see flows/cli.py)."""
