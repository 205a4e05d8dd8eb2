"""Replicate chunks undo Dask's MALLOC_TRIM_THRESHOLD_ for their own duration, then restore it."""

import ctypes
import platform
import sys

import pytest

from mixmio.inference import _tasks

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc only")


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


@pytest.fixture
def fake_libc(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: fake)
    return fake


def test_no_environment_variable_no_calls(fake_libc, monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with _tasks._glibc_malloc_defaults():
        pass
    assert fake_libc.calls == []


def test_raised_inside_and_restored_after_even_on_error(fake_libc, monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    with pytest.raises(RuntimeError), _tasks._glibc_malloc_defaults():
        assert fake_libc.calls == [(-1, 128 * 1024 * 1024), (-3, 32 * 1024 * 1024)]
        raise RuntimeError("replicate crashed")
    assert fake_libc.calls[2:] == [(-1, 65536), (-3, 128 * 1024)]


def test_chunk_results_unchanged_by_the_allocator_setting(monkeypatch):
    """The real mallopt: a chunk under Dask's environment gives the same numbers."""
    import numpy as np

    def fn(ctx, t):
        rng = np.random.default_rng(t)
        a = rng.normal(size=(300, 300))
        return float(np.linalg.norm(a @ a.T))

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    plain = _tasks._chunk(fn, None, [1, 2, 3])
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert _tasks._chunk(fn, None, [1, 2, 3]) == plain


def test_overlapping_chunks_raise_once_and_the_last_one_restores(fake_libc, monkeypatch):
    """Threading backend: chunks overlap in one process; an early finisher must not restore
    the thresholds under a chunk still running."""
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    raised = [(-1, 128 * 1024 * 1024), (-3, 32 * 1024 * 1024)]
    first, second = _tasks._glibc_malloc_defaults(), _tasks._glibc_malloc_defaults()
    first.__enter__()
    second.__enter__()
    assert fake_libc.calls == raised
    first.__exit__(None, None, None)
    assert fake_libc.calls == raised  # the second chunk still runs with the raised values
    second.__exit__(None, None, None)
    assert fake_libc.calls == raised + [(-1, 65536), (-3, 128 * 1024)]
