"""Every vignette has its fast-mode test and a committed rendering, and the renderer works."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import VIGNETTES, _renderer

NAMES = [p.stem for p in _renderer().vignettes()]


@pytest.mark.parametrize("name", NAMES)
def test_each_vignette_has_a_test_and_a_rendering(name):
    test = Path(__file__).parent / f"test_{name}.py"
    assert test.exists(), f"no tests/vignettes/test_{name}.py"
    md = VIGNETTES / "rendered" / f"{name}.md"
    assert md.exists(), f"run `make vignettes` to render {name}"
    text = md.read_text()
    assert "fast mode" not in text.splitlines()[-1], "the committed rendering is a full run"
    for link in __import__("re").findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (md.parent / link).exists(), f"{name}.md links a missing figure {link}"


def test_renderer_splits_cells_runs_them_and_saves_figures(tmp_path):
    src = tmp_path / "demo.py"
    src.write_text('"""Title line.\n\nIntro text."""\n\n# %% [markdown]\n# Some *markdown*.\n\n'
                   "# %% A code cell\nimport matplotlib.pyplot as plt\nx = 2\nprint('x =', x)\n"
                   "plt.plot([1, 2])\n\n# %%\nprint(x * 3)\n")
    md_path, printed = _renderer().render(src, tmp_path / "out", fast=True)
    md = md_path.read_text()
    assert md.startswith("# Title line.\n\nIntro text.")
    assert "Some *markdown*." in md and "# A code cell" in md
    assert "```text\nx = 2\n```" in md and "```text\n6\n```" in md
    assert (tmp_path / "out" / "demo_files" / "demo_1.png").exists()
    assert printed == "x = 2\n6\n"


def test_renderer_reports_the_failing_cell(tmp_path):
    src = tmp_path / "bad.py"
    src.write_text("# %%\nprint('before')\n\n# %%\nraise ValueError('boom')\n")
    with pytest.raises(RuntimeError, match=r"bad.py: cell \d failed[\s\S]*boom[\s\S]*before"):
        _renderer().render(src, tmp_path / "out")
