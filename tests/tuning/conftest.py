import pytest

import mixmio


@pytest.fixture(scope="session")
def sleep():
    return mixmio.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def exam():
    return mixmio.datasets.load("Exam")


@pytest.fixture
def no_fit(monkeypatch):
    """Any fit fails the test: input errors must come before."""
    import mixmio.api._lmer

    def boom(*a, **k):
        raise AssertionError("a fit ran before the input was checked")

    monkeypatch.setattr(mixmio.api._lmer, "lmer_fit", boom)
