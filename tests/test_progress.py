"""Progress bars (issue 17): drawn through ``tqdm.auto`` where a person watches (a Jupyter
kernel or a terminal), nothing otherwise, and never a change in the results."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.inference import _tasks


class FakeBar:
    """Stands in for ``tqdm.auto.tqdm``: records its arguments and updates."""

    made: list = []

    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs
        self.n = 0
        FakeBar.made.append(self)

    def update(self, n=1):
        self.n += n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def fake_tqdm(monkeypatch):
    import tqdm.auto

    FakeBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    return FakeBar


@pytest.fixture(scope="module")
def lm_fit():
    x = np.random.default_rng(0).normal(size=(80, 5))
    data = {"y": 2 * x[:, 0] - x[:, 2] + x[:, 4], "a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
            "d": x[:, 3]}
    return mixmio.mio_lm("y ~ a + b + c + d", data, k=2)


@pytest.fixture(scope="module")
def lmer_fit():
    df = mixmio.datasets.load("sleepstudy")
    return mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", df, k=4)


def _jupyter(monkeypatch, on: bool):
    monkeypatch.setattr(_tasks, "_in_jupyter", lambda: on)


class _Tty:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, []

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass


def test_show_progress_decides_by_where_it_runs(monkeypatch):
    _jupyter(monkeypatch, False)
    monkeypatch.setattr(sys, "stderr", _Tty(True))
    assert _tasks.show_progress(True) and not _tasks.show_progress(False)
    monkeypatch.setattr(sys, "stderr", _Tty(False))
    assert not _tasks.show_progress(True)
    _jupyter(monkeypatch, True)  # a kernel's stderr is no terminal, the widget still shows
    assert _tasks.show_progress(True) and not _tasks.show_progress(False)


def test_in_jupyter_without_ipython_or_a_kernel(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert not _tasks._in_jupyter()

    class Shell:
        config = {"TerminalIPythonApp": {}}

    class IPython:
        @staticmethod
        def get_ipython():
            return Shell()

    monkeypatch.setitem(sys.modules, "IPython", IPython)
    assert not _tasks._in_jupyter()  # the IPython terminal is not a notebook
    Shell.config = {"IPKernelApp": {}}
    assert _tasks._in_jupyter()


@pytest.mark.parametrize("kind", ["lm", "lmer"])
def test_progress_false_draws_nothing(kind, lm_fit, lmer_fit, fake_tqdm, monkeypatch, capfd):
    _jupyter(monkeypatch, True)  # even where a bar would show
    fit = lm_fit if kind == "lm" else lmer_fit
    fit.bootstrap(B=6, random_state=1, progress=False)
    assert fake_tqdm.made == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("kind", ["lm", "lmer"])
def test_progress_true_draws_through_tqdm_auto(kind, lm_fit, lmer_fit, fake_tqdm,
                                               monkeypatch):
    _jupyter(monkeypatch, True)
    fit = lm_fit if kind == "lm" else lmer_fit
    quiet = fit.bootstrap(B=6, random_state=1, progress=False)
    shown = fit.bootstrap(B=6, random_state=1, progress=True)
    assert len(fake_tqdm.made) == 1
    bar = fake_tqdm.made[0]
    assert bar.kwargs["total"] == 6 and bar.n == 6 and bar.kwargs["unit"] == "replicate"
    pd.testing.assert_frame_equal(quiet.table, shown.table)
    np.testing.assert_array_equal(quiet.draws, shown.draws)


def test_stability_bar_and_identical_results(lmer_fit, fake_tqdm, monkeypatch):
    _jupyter(monkeypatch, True)
    a = lmer_fit.stability(B=4, random_state=2, progress=False)
    b = lmer_fit.stability(B=4, random_state=2, progress=True)
    bar, = fake_tqdm.made
    assert bar.n == bar.kwargs["total"] > 0
    pd.testing.assert_frame_equal(a.frequencies, b.frequencies)


def test_real_tqdm_is_silent_on_a_pipe(lm_fit, monkeypatch):
    _jupyter(monkeypatch, False)
    pipe = _Tty(False)
    monkeypatch.setattr(sys, "stderr", pipe)
    lm_fit.bootstrap(B=4, random_state=1, progress=True)
    assert pipe.text == []


def test_real_tqdm_draws_text_on_a_terminal(lm_fit, monkeypatch):
    _jupyter(monkeypatch, False)
    tty = _Tty(True)
    monkeypatch.setattr(sys, "stderr", tty)
    lm_fit.bootstrap(B=4, random_state=1, progress=True)
    assert "4/4" in "".join(tty.text)


def test_bootstrap_defaults_agree():
    """Every bootstrap and stability front door defaults to progress=True."""
    from mixmio.inference.bootstrap import bootstrap
    from mixmio.inference.stability import stability
    from mixmio.inference.subset_bootstrap import subset_bootstrap
    from mixmio.results.glm import MioGlmResult
    from mixmio.results.glmer import MioGlmerResult
    from mixmio.results.lm import MioLmResult
    from mixmio.results.lmer import MioLmerResult

    funcs = [MioLmResult.bootstrap, MioGlmResult.bootstrap, MioLmerResult.bootstrap,
             MioGlmerResult.bootstrap, MioGlmerResult.stability, bootstrap, stability,
             subset_bootstrap]
    defaults = {f.__qualname__: inspect.signature(f).parameters["progress"].default
                for f in funcs}
    assert set(defaults.values()) == {True}, defaults
