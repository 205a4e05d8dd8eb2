"""Fuzz the front doors (issue 14): random mutations of valid lme4 formulas on data with random
column dtypes.  Whatever is raised must be mixmio's own error or a ValueError / TypeError with
a message, never an AttributeError, KeyError or IndexError from inside a library."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixmio
from mixmio.errors import MixmioError

FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x + z + (1 + x | g)",
    "y ~ x * z + (x || g)",
    "y ~ 0 + x + (1 | g/h)",
    "y ~ x + (1 | g) + (1 | h)",
    "y ~ np.log(z + 10) + C(h) + (1 | g:h)",
    "y ~ x + offset(z) + (0 + x | g)",
    "y ~ x + I(x ** 2)",
]
PIECES = ["+", "-", "*", "/", ":", "|", "||", "(", ")", "~", "0", "1", " ", "x", "g", "`",
          "C(", "np.", ",", "**", "[", "]", "w", "'", ".", "offset(", "y"]
KINDS = ["float", "int", "object_num", "str", "category", "bool", "datetime", "timedelta",
         "complex", "list", "all_nan", "const"]


def _column(kind: str, n: int, rng: np.random.Generator, with_nan: bool):
    base = rng.integers(0, 4, n)
    if kind == "float":
        out = pd.Series(rng.normal(size=n))
    elif kind == "int":
        out = pd.Series(base)
    elif kind == "object_num":
        out = pd.Series(base.astype(float), dtype=object)
    elif kind == "str":
        out = pd.Series([f"L{v}" for v in base])
    elif kind == "category":
        out = pd.Series(pd.Categorical([f"c{v}" for v in base]))
    elif kind == "bool":
        out = pd.Series(base > 1)
    elif kind == "datetime":
        out = pd.Series(pd.Timestamp("2021-01-01") + pd.to_timedelta(base, unit="D"))
    elif kind == "timedelta":
        out = pd.Series(pd.to_timedelta(base, unit="h"))
    elif kind == "complex":
        out = pd.Series(base + 1j)
    elif kind == "list":
        out = pd.Series([[v] for v in base])
    elif kind == "all_nan":
        out = pd.Series(np.full(n, np.nan))
    else:
        out = pd.Series(np.ones(n))
    if with_nan and kind not in ("list",) and n > 3:
        out = out.astype(object) if kind in ("bool", "int") else out
        out.iloc[1] = None
    return out


@st.composite
def cases(draw):
    formula = draw(st.sampled_from(FORMULAS))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(formula)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(PIECES))
        if op == "insert":
            formula = formula[:pos] + piece + formula[pos:]
        elif op == "delete":
            formula = formula[:pos] + formula[pos + 1:]
        else:
            formula = formula[:pos] + piece + formula[pos + len(piece):]
    n = draw(st.sampled_from([1, 2, 12, 40]))
    seed = draw(st.integers(0, 2**16))
    kinds = {c: draw(st.sampled_from(KINDS)) if draw(st.booleans()) else default
             for c, default in (("x", "float"), ("z", "float"), ("g", "int"), ("h", "str"),
                                ("y", "float"))}
    nan = draw(st.booleans())
    as_dict = draw(st.booleans())
    door = draw(st.sampled_from(["build_design", "mio_lm", "mio_lmer", "predict"]))
    return formula, n, seed, kinds, nan, as_dict, door


def _call(formula, data, door):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if door == "build_design":
            return mixmio.build_design(formula, data)
        if door == "mio_lm":
            return mixmio.mio_lm(formula, data, k=1, time_limit=5)
        if door == "mio_lmer":
            return mixmio.mio_lmer(formula, data, k=1, time_limit=5)
        d = mixmio.build_design(formula, data)
        return d.transform(data)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_front_doors_raise_only_clear_errors(case):
    formula, n, seed, kinds, nan, as_dict, door = case
    rng = np.random.default_rng(seed)
    cols = {c: _column(k, n, rng, nan and c == "x") for c, k in kinds.items()}
    data = {c: v.to_numpy() for c, v in cols.items()} if as_dict else pd.DataFrame(cols)
    try:
        _call(formula, data, door)
    except MixmioError as exc:
        assert str(exc)
    except (ValueError, TypeError) as exc:
        bad = (AttributeError, KeyError, IndexError)
        assert not isinstance(exc, bad), f"{formula!r} on {kinds}: {exc!r}"
        assert str(exc), f"{formula!r} on {kinds}: an error without a message ({exc!r})"
    except (AttributeError, KeyError, IndexError) as exc:  # pragma: no cover - the failure
        pytest.fail(f"internal {type(exc).__name__} for {formula!r} on {kinds} "
                    f"(door {door}): {exc}")
