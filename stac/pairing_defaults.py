"""The pairing defaults of every entry point, in a module that imports nothing heavy."""

from __future__ import annotations

# the activation flow, `coalign activate` and `coalign pairs` share them: a responder pairs scenes
# taken within two months of each other that overlap by a tenth or more
MAX_GAP_DAYS = 60.0
MIN_OVERLAP = 0.1
