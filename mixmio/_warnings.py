"""Warnings that point at the user's line, not at mixmio's internals."""

from __future__ import annotations

import os
import sys

_PKG = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` called right after this: the first frame outside
    the mixmio package (the user's call), however deep the internal call chain is."""
    f = sys._getframe(1)  # the function that will call warnings.warn: stacklevel 1
    level = 1
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG + os.sep):
        f = f.f_back
        level += 1
    return level
