"""The shared best-first driver on a toy problem with a known answer."""
import itertools
import time

import numpy as np
import pytest

from mixmio.solvers.bnb.bestfirst import BestFirst


def _toy_bnb(c, k, time_limit=None, mip_gap=0.0):
    """min sum_j c_j x_j over x in {0,1}^n with sum x = k, branching on x_0, x_1, ...
    Node bound: fixed part + the smallest (k - #ones) free costs (exact for this problem
    only at leaves, a valid lower bound everywhere)."""
    n = len(c)

    def bound(fixed):
        ones = sum(fixed)
        rest = np.sort(c[len(fixed):])[: k - ones] if k - ones >= 0 else None
        if rest is None or len(rest) < k - ones:
            return np.inf
        return float(np.dot(c[: len(fixed)], fixed) + rest.sum())

    bf = BestFirst((), None, np.inf, mip_gap, time_limit, time.perf_counter())
    for fixed in bf:
        lb = bound(fixed)
        if len(fixed) == n:
            if sum(fixed) == k:
                bf.offer(lb, fixed)
            bf.close(lb)
            continue
        if lb >= bf.target:
            bf.close(lb)
            continue
        for v in (0, 1):
            child = fixed + (v,)
            bf.push(bound(child), len(child), child)
    return bf


def test_bestfirst_finds_and_proves_the_optimum():
    rng = np.random.default_rng(3)
    c = rng.normal(size=8)
    bf = _toy_bnb(c, 3)
    brute = min(sum(c[list(s)]) for s in itertools.combinations(range(8), 3))
    assert abs(bf.U - brute) < 1e-12
    assert abs(bf.bound() - brute) < 1e-12
    assert sum(bf.best) == 3 and not bf.timed_out


def test_bestfirst_time_limit_reports_the_open_bound():
    c = np.random.default_rng(4).normal(size=12)
    bf = _toy_bnb(c, 4, time_limit=0.0)
    brute = min(sum(c[list(s)]) for s in itertools.combinations(range(12), 4))
    assert bf.timed_out and bf.nodes == 1
    assert bf.bound() <= brute + 1e-12  # still a valid lower bound
    assert bf.U == np.inf  # nothing found, nothing claimed


def test_verbose_prints_progress_lines(monkeypatch, capsys):
    import mixmio
    from mixmio.solvers.bnb import bestfirst as _bestfirst

    monkeypatch.setattr(_bestfirst, "PROGRESS_EVERY", 0.0)
    ex = mixmio.datasets.load("exam")
    with pytest.warns(RuntimeWarning):
        mixmio.mio_lmer("normexam ~ standLRT + schgend + schavg + (1 | school)", ex, k=6,
                        time_limit=0.5, verbose=True)
    err = capsys.readouterr().err
    assert "branch and bound:" in err and "nodes" in err and "gap" in err
    mixmio.mio_lmer("normexam ~ standLRT + (1 | school)", ex, k=3)  # quiet by default
    assert "branch and bound:" not in capsys.readouterr().err
