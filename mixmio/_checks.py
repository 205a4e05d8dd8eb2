"""Every argument check of the front doors, in one place.

``mio_lmer``, ``mio_lm``, ``mio_glm``, ``mio_clr``, ``build_design``,
``holistic_regression``, the ``bootstrap`` / ``stability`` methods and ``predict`` call these
before any solve, so the same bad value gets the same message everywhere.  Each raises a
subclass of :class:`mixmio.errors.MixmioError`.

>>> check_bool("warm_start", "no")
Traceback (most recent call last):
...
mixmio.errors.ArgumentTypeError: warm_start must be True or False, got str 'no'
>>> check_random_state(3)
3
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import cast

import numpy as np
import pandas as pd

from mixmio.errors import ArgumentError, ArgumentTypeError, DataError, DataTypeError

__all__ = ["as_frame", "check_bool", "check_choice", "check_int", "check_n_jobs",
           "check_random_state", "check_replicate_settings", "check_ridge",
           "check_solve_args", "check_split",
           "dtype_class"]


def _shown(value) -> str:
    return f"{type(value).__name__} {value!r}"


def as_frame(data, name: str = "data") -> pd.DataFrame:
    """``data`` as a DataFrame: a DataFrame as is, a dict (mapping) of named columns
    converted; anything else is refused, and so are duplicate column names."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping):
        try:
            frame = pd.DataFrame(dict(data))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{name}: a dict of columns must hold equal-length columns "
                            f"(pandas says: {exc})") from None
    else:
        raise DataTypeError(f"{name} must be a pandas DataFrame (or a dict of columns), got "
                            f"{type(data).__name__}")
    cols = frame.columns
    if cols.has_duplicates:
        dup = sorted({str(c) for c in cols[cols.duplicated()]})
        raise DataError(f"{name} has duplicate column names {dup}: a formula cannot tell them "
                        "apart. Rename or drop the duplicates first, e.g. "
                        f"{name} = {name}.loc[:, ~{name}.columns.duplicated()]")
    return frame


def check_bool(name: str, value) -> bool:
    """``value`` must be a bool (numpy's included): a string such as ``"no"`` is truthy."""
    if not isinstance(value, bool | np.bool_):
        raise ArgumentTypeError(f"{name} must be True or False, got {_shown(value)}")
    return bool(value)


def check_choice(name: str, value, choices) -> None:
    """``value`` must be one of ``choices`` (compared with ``==``; bools are not 0/1)."""
    ok = any(value is c or (type(value) is type(c) and value == c) for c in choices)
    if not ok:
        raise ArgumentError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_int(name: str, value, lo: int | None = None, none_ok: bool = False) -> int | None:
    """An integer (not a bool), at least ``lo`` when given."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an int, got {_shown(value)}")
    if lo is not None and value < lo:
        raise ArgumentError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def check_ridge(ridge, positive: bool = False) -> None:
    """``"auto"`` or a finite real (> 0 with ``positive``, else >= 0); bools are refused
    (``ridge=True`` is not ridge 1)."""
    if isinstance(ridge, str) and ridge == "auto":
        return
    what = f"'auto' or a {'positive' if positive else 'non-negative'} number"
    if isinstance(ridge, bool | np.bool_) or not isinstance(ridge, numbers.Real):
        raise ArgumentTypeError(f"ridge must be {what}, got {_shown(ridge)}")
    # a numbers.Real, which numpy's stubs and int comparisons do not accept: cast for mypy
    ridge = cast(float, ridge)
    if not np.isfinite(ridge) or ridge < 0 or (positive and ridge == 0):
        raise ArgumentError(f"ridge must be {what}, got {ridge!r}")


def check_random_state(random_state):
    """None, an int >= 0, a sequence of such ints, a ``numpy.random.SeedSequence`` or a
    ``numpy.random.Generator``.  A Generator is drawn from once for an int seed (so the fit is
    reproducible from the Generator's state), a SeedSequence gives an int seed of its own
    state; ints and sequences of ints are returned as they are.  Bools are
    refused."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.SeedSequence):
        return int(random_state.generate_state(1, np.uint64)[0] >> np.uint64(1))
    bad = isinstance(random_state, bool | np.bool_) or isinstance(random_state, str | bytes)
    if not bad and isinstance(random_state, numbers.Integral):
        bad = random_state < 0
    elif not bad:
        try:
            arr = np.asarray(random_state)
            bad = (arr.dtype.kind not in "iu" or arr.ndim != 1 or arr.size == 0
                   or bool((arr < 0).any()))
        except (TypeError, ValueError):
            bad = True
    if bad:
        raise ArgumentTypeError("random_state must be None, an int >= 0, a sequence of such "
                                "ints or a numpy Generator, got "
                                f"{type(random_state).__name__} {random_state!r}")
    return random_state


def check_n_jobs(n_jobs) -> int | None:
    """joblib's convention: a positive int is that many workers, -1 all cores, -2 all but
    one, ...; None is 1 (or the active ``joblib.parallel_config``).  0 and bools are refused."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool | np.bool_) or not isinstance(n_jobs, numbers.Integral):
        raise ArgumentTypeError(f"n_jobs must be an int (or None), got {_shown(n_jobs)}")
    if n_jobs == 0:
        raise ArgumentError("n_jobs must not be 0: use a positive number of workers, -1 for "
                            "all cores (as in joblib), or None")
    return int(n_jobs)


def check_replicate_settings(random_state, n_jobs, progress) -> tuple:
    """The settings every replicate method (``bootstrap``, ``stability``) shares; returns
    ``(random_state, n_jobs)`` as :func:`check_random_state` and :func:`check_n_jobs` give
    them."""
    check_bool("progress", progress)
    return check_random_state(random_state), check_n_jobs(n_jobs)


def check_solve_args(mip_gap, time_limit) -> None:
    """``mip_gap`` in [0, 1); ``time_limit`` None or a positive number of seconds."""
    if isinstance(mip_gap, bool | np.bool_) or not isinstance(mip_gap, numbers.Real):
        raise ArgumentTypeError(f"mip_gap must be a number in [0, 1), got {_shown(mip_gap)}")
    mip_gap = cast(float, mip_gap)  # a numbers.Real (see check_ridge)
    if not 0 <= mip_gap < 1:
        raise ArgumentError(f"mip_gap must be in [0, 1), got {mip_gap!r}")
    if time_limit is None:
        return
    if isinstance(time_limit, bool | np.bool_) or not isinstance(time_limit, numbers.Real):
        raise ArgumentTypeError("time_limit must be None or a positive number of seconds, got "
                                f"{_shown(time_limit)}")
    time_limit = cast(float, time_limit)  # a numbers.Real (see check_ridge)
    if not time_limit > 0:
        raise ArgumentError(f"time_limit must be a positive number of seconds, got "
                            f"{time_limit!r}")


def check_split(split) -> tuple[float, float, float]:
    """Three fractions in (0, 1) summing to 1 (training, validation, test)."""
    try:
        parts = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"split must be three numbers (training, validation and test "
                                f"fractions), got {split!r}") from None
    if len(parts) != 3 or any(not 0 < f < 1 for f in parts) or abs(sum(parts) - 1) > 1e-9:
        raise ArgumentError(f"split must be three fractions in (0, 1) summing to 1, got "
                            f"{split!r}")
    return parts


def dtype_class(dtype) -> str:
    """The family of a column's dtype that decides how a formula encodes it: ``numeric``,
    ``bool``, ``categorical`` (category, object, string), ``datetime``, ``timedelta``,
    ``complex``."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex"
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "categorical"
