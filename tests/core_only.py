"""Run by ``make check-core`` in a venv with mixmio's core dependencies only (no extras):
a default fit works, and every feature that needs an extra says which ``pip install`` brings it.
Not a pytest module (it needs a venv without the extras); tests/test_extras.py checks the same
errors in the dev venv by hiding the modules."""

from __future__ import annotations

import importlib.util


def main() -> None:
    import mixmio
    from mixmio.errors import MissingDependencyError

    for module in ("cvxpy", "pyscipopt", "gurobipy", "sklearn", "dask"):
        assert importlib.util.find_spec(module) is None, f"{module} is installed: not a core venv"
    data = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (Days | Subject)", data, k=2)
    assert fit.status == "optimal", fit.status
    lm = mixmio.mio_lm("Reaction ~ Days", data, k=1)
    assert lm.status == "optimal", lm.status
    checks = {
        "mixmio[sklearn]": [lambda: mixmio.MioLmerRegressor,
                            lambda: fit.predict(data.assign(Subject="new"), new_levels="soft")],
        "mixmio[scip]": [lambda: mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=2,
                                                 solver="SCIP")],
    }
    for extra, calls in checks.items():
        for call in calls:
            try:
                call()
            except MissingDependencyError as exc:
                assert f"pip install '{extra}'" in str(exc), str(exc)
            else:
                raise AssertionError(f"no MissingDependencyError naming {extra}")
    print("core only: default fits certified; missing extras name their pip command")


if __name__ == "__main__":
    main()
