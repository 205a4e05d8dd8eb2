"""mixmio's exceptions: one base class, :class:`MixmioError`, for every error mixmio raises
on purpose.

Each subclass also derives from the built-in exception a user would catch without knowing
mixmio (``ValueError`` for bad values, ``TypeError`` for bad types, ``KeyError`` for unknown
columns, ``RuntimeError`` for a solver that refuses), so ``except ValueError`` keeps working.

>>> import pandas as pd, mixmio
>>> try:
...     mixmio.build_design("y ~ x", [1, 2, 3])
... except mixmio.MixmioError as exc:
...     print(type(exc).__name__, "|", exc)
DataTypeError | data must be a pandas DataFrame (or a dict of columns), got list
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "ColumnNotFoundError",
    "DataError",
    "DataTypeError",
    "FormulaError",
    "GurobiLicenceError",
    "MissingDependencyError",
    "MixmioError",
    "RankDeficientError",
    "SeparationError",
]


class MixmioError(Exception):
    """Base class of every error mixmio raises on purpose."""


class ArgumentError(MixmioError, ValueError):
    """An argument has a value out of its range or not among its choices."""


class ArgumentTypeError(MixmioError, TypeError):
    """An argument has the wrong type (``warm_start="no"``, ``ridge=True``)."""


class DataError(MixmioError, ValueError):
    """The data cannot be used as given (duplicate column names, one row, missing values
    under ``na_action="raise"``, unusable values)."""


class DataTypeError(MixmioError, TypeError):
    """The data, or a column the formula uses, has a type mixmio cannot use (not a
    DataFrame, datetime or complex columns, a dtype that differs from training)."""


class ColumnNotFoundError(MixmioError, KeyError):
    """The formula (or a constraint) names a column the data does not have."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class FormulaError(MixmioError, ValueError):
    """A formula syntax error, shown with a caret under the offending position."""

    def __init__(self, message: str, formula: str, position: int):
        self.reason = message
        self.formula = formula
        self.position = max(0, min(position, len(formula)))
        super().__init__(f"{message}\n    {formula}\n    {' ' * self.position}^")


class RankDeficientError(MixmioError, ValueError):
    """X does not have full column rank; the message names the aliased columns."""

    def __init__(self, message: str, aliased: list[str]):
        self.aliased = aliased
        super().__init__(message)


class SeparationError(MixmioError, ValueError):
    """The classes are (quasi-)completely separated: the unpenalised maximum-likelihood
    estimate does not exist; ``columns`` names the separating columns when known."""

    def __init__(self, message: str, columns: list[str] | None = None):
        self.columns = columns or []
        super().__init__(message)


class GurobiLicenceError(MixmioError, RuntimeError):
    """Gurobi refused the model (error 10010: the pip wheel's size-limited licence)."""


class MissingDependencyError(MixmioError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` command
    of the extra that brings it (``mixmio[scip]``, ``mixmio[gurobi]``, ``mixmio[sklearn]``,
    ``mixmio[dask]``)."""
