"""Thin wrappers around formulaic: variables a formula reads, and clear errors."""

from __future__ import annotations

import ast
import re
import warnings

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.errors import (
    DataMismatchWarning,
    FactorEvaluationError,
    FormulaParsingError,
    FormulaSyntaxError,
)

from mixmio.errors import DataError
from mixmio.formula import FormulaError, FormulaSpec


def _factor_variables(formula: str, bare_only: bool = False) -> set[str]:
    """Names of data columns a formulaic formula reads (stateful transforms included);
    ``bare_only``: only those read as they are (``x``, not ``C(x)`` or ``np.log(x)``)."""
    names: set[str] = set()
    f = Formula(formula)
    parts = [f.lhs, f.rhs] if hasattr(f, "lhs") else [f]
    for part in parts:
        for term in part:
            for factor in term.factors:
                method = getattr(factor.eval_method, "value", factor.eval_method)
                if method == "lookup":
                    names.add(factor.expr.strip("`"))
                elif method == "python" and not bare_only:
                    names |= _python_names(factor.expr)
    return names


def bare_variables(spec: FormulaSpec) -> set[str]:
    """Variables of the fixed part and the random terms' left-hand sides used as they are."""
    out = _factor_variables(spec.fixed_formula, bare_only=True)
    for t in spec.random:
        if t.expr.strip() != "1":
            out |= _factor_variables(t.expr, bare_only=True)
    return {n.strip("`") for n in out}


def _python_names(expr: str) -> set[str]:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return set()
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    roots = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return {n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and id(n) not in callees and id(n) not in roots}


def _spec_variables(expr: str, spec: FormulaSpec) -> set[str]:
    """:func:`_factor_variables` of a part of ``spec``; formulaic's syntax errors become a
    :class:`FormulaError` with a caret at that part of the user's formula."""
    try:
        return _factor_variables(expr)
    except (FormulaSyntaxError, FormulaParsingError, SyntaxError) as exc:
        if isinstance(exc, SyntaxError):  # Python's, from formulaic's code sanitizer
            reason = f"a term is not valid Python ({exc.msg}: {exc.text!r})"
        else:
            reason = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines()[0]
        where = spec.formula.find(expr.split("~")[-1].strip())
        raise FormulaError(f"cannot read '{expr}': {reason}", spec.formula,
                           max(where, 0)) from None


def required_columns(spec: FormulaSpec, response: bool = True) -> list[str]:
    """Every variable the formula reads, response first, in a stable order
    (``response=False``: only those the right-hand side reads, for prediction)."""
    names: set[str] = set()
    names |= _spec_variables(spec.fixed_formula if response else spec.fixed, spec)
    for t in spec.random:
        if t.expr.strip() != "1":
            names |= _spec_variables(t.expr, spec)
        names |= set(t.group_vars)
    for o in spec.offsets:
        names |= _python_names(o)
    names = {n.strip("`") for n in names} - {"True", "False", "None"}
    resp = spec.response.strip().strip("`")
    return ([resp] if resp in names else []) + sorted(names - {resp})


def materialize(formula_or_spec, data: pd.DataFrame, what: str):
    """formulaic's model matrix with errors that say which part of the formula failed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataMismatchWarning)
            if isinstance(formula_or_spec, str):
                return model_matrix(formula_or_spec, data, na_action="raise")
            return formula_or_spec.get_model_matrix(data, na_action="raise")
    except DataMismatchWarning as exc:
        raise DataError(f"{what}: new data has factor levels not seen in training. "
                         f"{exc}") from None
    except (FormulaSyntaxError, FormulaParsingError, SyntaxError) as exc:
        text = formula_or_spec if isinstance(formula_or_spec, str) else str(what)
        raise FormulaError(f"{what}: formula syntax error: {exc}", text, 0) from None
    except FactorEvaluationError as exc:
        raise DataError(f"{what}: could not evaluate a term: {exc}") from None
    except ValueError as exc:
        if "null values" in str(exc):
            raise DataError(f"{what}: {exc} (a transform produced NaN, e.g. log of a "
                             "non-positive value)") from None
        raise


def evaluate_offset(expr: str, data: pd.DataFrame) -> np.ndarray:
    mm = materialize(f"0 + I({expr})", data, f"offset({expr})")
    if mm.shape[1] != 1:
        raise DataError(f"offset({expr}) must be one numeric column")
    return mm.to_numpy(dtype=float)[:, 0]
