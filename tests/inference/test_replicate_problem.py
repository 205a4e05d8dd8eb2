"""Replicates solve the fit's own problem (sign caps and l1 kept), refuse what they cannot
resample, check their solver settings up front, and say when a selection is not proven."""

import numpy as np
import pytest

import mixmio


@pytest.fixture(scope="module")
def sleep():
    return mixmio.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def signed_fit(sleep):
    return mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k={"1|Subject": (3, 1)})


def test_residual_replicates_keep_the_sign_caps(signed_fit):
    (sc,) = signed_fit.problem.sign_caps
    boot = signed_fit.bootstrap(B=20, random_state=3, progress=False)
    assert boot.n_ok == 20
    for w in boot.draws[boot.ok]:
        v = w[sc.index]
        assert np.count_nonzero(v > 0) <= sc.k_pos and np.count_nonzero(v < 0) <= sc.k_neg


@pytest.mark.parametrize("call", [
    lambda f: f.bootstrap(B=4, scheme="cluster", progress=False),
    lambda f: f.bootstrap(B=4, ci="bca", progress=False),
    lambda f: f.stability(B=4, progress=False),
])
def test_resampling_a_sign_capped_fit_is_refused_up_front(signed_fit, call):
    with pytest.raises((NotImplementedError, ValueError), match="sign caps"):
        call(signed_fit)


@pytest.mark.parametrize("kw,match", [({"solver": "nope"}, "nope"),
                                      ({"time_limit": "a"}, "time_limit"),
                                      ({"time_limit": -1}, "time_limit")])
def test_bad_solver_settings_raise_before_any_replicate(sleep, monkeypatch, kw, match):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3)
    import sys

    for name in ("mixmio.inference.bootstrap", "mixmio.inference.stability"):
        mod = sys.modules[name]
        monkeypatch.setattr(mod, "run_tasks", lambda *a, **k: pytest.fail("replicates ran"))
    with pytest.raises((ValueError, TypeError), match=match):
        fit.bootstrap(B=4, progress=False, **kw)
    with pytest.raises((ValueError, TypeError), match=match):
        fit.stability(B=4, progress=False, **kw)


def test_heuristic_replicates_are_labelled(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3)
    boot = fit.bootstrap(B=4, random_state=0, progress=False, solver="heuristic")
    assert boot.status_counts.to_dict() == {"heuristic": 4}
    assert "4 of the 4 successful replicates are not proven optimal (heuristic 4)" \
        in boot.describe()
    exact = fit.bootstrap(B=4, random_state=0, progress=False)
    assert "not proven optimal" not in exact.describe()
    stab = fit.stability(B=4, random_state=0, progress=False, solver="heuristic")
    assert "not proven optimal" in stab.describe()


def test_scheme_options_that_would_be_ignored_are_refused(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=3)
    with pytest.raises(ValueError, match="within_cluster"):
        fit.bootstrap(B=4, scheme="wild", within_cluster=True, progress=False)
    with pytest.raises(ValueError, match="weights"):
        fit.bootstrap(B=4, scheme="residual", weights="mammen", progress=False)
    # numpy scalars are numbers too
    boot = fit.bootstrap(B=4, level=np.float32(0.9), random_state=0, progress=False)
    assert boot.level == pytest.approx(0.9)
    stab = fit.stability(B=4, threshold=np.float64(0.7), random_state=0, progress=False)
    assert stab.threshold == pytest.approx(0.7)


def test_fixed_effect_constraints_survive_cluster_resampling():
    """k_fixed with a factor groups its dummies (a constraint on fixed columns only): the
    cluster bootstrap, bca's jackknife and stability selection now run on such fits, and every
    replicate keeps the group all-or-nothing."""
    import warnings

    import numpy as np

    import mixmio

    d = mixmio.datasets.load("cake")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mixmio.mio_lmer("angle ~ recipe + temperature + (1 | replicate)", d, k=3,
                              k_fixed=2)
        assert not fit.problem.is_plain  # the automatic group
        boot = fit.bootstrap(B=12, scheme="cluster", random_state=0)
        assert boot.n_ok == 12
        names = list(fit.fixef.index)
        b, c = names.index("recipe[T.B]"), names.index("recipe[T.C]")
        dr = boot.draws[boot.ok]
        assert np.array_equal(dr[:, b] != 0, dr[:, c] != 0)
        assert fit.bootstrap(B=12, ci="bca", random_state=0).jackknife_failures == 0
        assert fit.stability(B=12, random_state=0).n_ok == 12
