import matplotlib
import pytest

import mixmio
from mixmio.datasets import load

matplotlib.use("Agg")

FORMULA = "Reaction ~ Days + (1 | Subject)"


@pytest.fixture(scope="session")
def sleep():
    return load("sleepstudy")


@pytest.fixture(scope="session")
def fit(sleep):
    return mixmio.mio_lmer(FORMULA, sleep, k=3)


@pytest.fixture(scope="session")
def boot(fit):
    return fit.bootstrap(B=24, scheme="residual", random_state=7, progress=False)
