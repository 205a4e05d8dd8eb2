"""Suite-wide fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures are created through pyplot (so they show in Jupyter): close them after each
    test, as a notebook user would, so hundreds of tests do not keep hundreds open."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
