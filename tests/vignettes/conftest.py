"""Run a vignette in fast mode through the renderer (as `make vignettes` does, into tmp)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

VIGNETTES = Path(__file__).resolve().parents[2] / "vignettes"


def _renderer():
    spec = importlib.util.spec_from_file_location("_render", VIGNETTES / "_render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def run_vignette(tmp_path, monkeypatch):
    """``run_vignette(name) -> (markdown, printed)`` for ``vignettes/NAME.py`` in fast mode."""

    def run(name: str) -> tuple[str, str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            md_path, printed = _renderer().render(VIGNETTES / f"{name}.py", tmp_path, fast=True)
        return md_path.read_text(), printed

    monkeypatch.delenv("MIXMIO_VIGNETTE_FAST", raising=False)
    return run
