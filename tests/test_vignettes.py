"""Every vignette runs end to end (they print real fits on shipped data)."""

import runpy
import warnings
from pathlib import Path

import pytest

VIGNETTES = sorted((Path(__file__).parent.parent / "vignettes").glob("*.py"))


@pytest.mark.parametrize("path", VIGNETTES, ids=[p.stem for p in VIGNETTES])
def test_vignette_runs(path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "status" in out and "Random effects" in out
