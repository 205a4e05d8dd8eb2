"""Reproducibility across n_jobs and a Dask cluster; progress bar switch."""

import numpy as np
import pytest


def test_identical_across_n_jobs(fit):
    kw = {"B": 12, "scheme": "cluster", "random_state": 123, "progress": False}
    one = fit.bootstrap(n_jobs=1, **kw)
    two = fit.bootstrap(n_jobs=2, **kw)
    np.testing.assert_array_equal(one.draws, two.draws)
    assert one.statuses == two.statuses
    s1 = fit.stability(B=6, random_state=5, progress=False, n_jobs=1)
    s2 = fit.stability(B=6, random_state=5, progress=False, n_jobs=2)
    np.testing.assert_array_equal(s1.selected, s2.selected)


def test_dask_cluster_gives_identical_results(fit):
    distributed = pytest.importorskip("dask.distributed")
    import joblib

    kw = {"B": 12, "scheme": "wild", "random_state": 9, "progress": False}
    ref = fit.bootstrap(n_jobs=1, **kw)
    sref = fit.stability(B=4, random_state=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_config(backend="dask"):
        on_dask = fit.bootstrap(n_jobs=-1, **kw)
        s_dask = fit.stability(B=4, random_state=2, progress=False, n_jobs=-1)
    np.testing.assert_array_equal(ref.draws, on_dask.draws)
    np.testing.assert_array_equal(sref.selected, s_dask.selected)


def test_different_seeds_differ_and_none_is_recorded(fit):
    a = fit.bootstrap(B=4, random_state=1, progress=False)
    b = fit.bootstrap(B=4, random_state=2, progress=False)
    assert not np.array_equal(a.draws, b.draws)
    c = fit.bootstrap(B=4, random_state=None, progress=False)
    d = fit.bootstrap(B=4, random_state=c.random_state, progress=False)
    np.testing.assert_array_equal(c.draws, d.draws)


def test_progress_only_on_a_terminal(monkeypatch):
    import sys

    from mixmio.inference._tasks import show_progress

    class Tty:
        def isatty(self):
            return True

    class Pipe:
        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stderr", Tty())
    assert show_progress(True) and not show_progress(False)
    monkeypatch.setattr(sys, "stderr", Pipe())
    assert not show_progress(True)
