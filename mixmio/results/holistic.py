"""The results of :func:`mixmio.holistic_regression`: HolisticResult (the finalists and the
grid), HolisticModel (one finalist) and their summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio.results.summary import Summary, SummaryTable

if TYPE_CHECKING:
    from mixmio.design import Design

__all__ = ["HolisticModel", "HolisticResult", "HolisticSummary", "r_squared",
           "response_values"]


@dataclass(frozen=True, eq=False)
class HolisticModel:
    """One finalist of :func:`holistic_regression` (coefficients on the original scale).

    Attributes: ``k`` and ``gamma`` (the grid point it came from), ``coef`` (every design
    column, zeros for the unselected ones), ``selected`` (column names), ``val_r2`` and
    ``test_r2`` (R^2 on the validation and test rows), ``condition`` and ``max_corr`` (of the
    selected training columns), ``intervals`` (bootstrap ``lower`` / ``upper`` per column in
    the model), ``status``, ``gap`` and ``solver`` of the final solve, ``rounds`` (the
    significance loop's rounds) and ``significant``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
    ...                                  top=2, B=20, random_state=0)
    >>> m = res.best
    >>> m.selected, m.status, m.significant
    (['a', 'b'], 'optimal', True)
    >>> m.coef.round(1).tolist()
    [-0.0, 1.9, -1.0, 0.0, 0.0]
    >>> list(m.intervals.columns)
    ['lower', 'upper']
    """

    k: int
    gamma: float
    coef: pd.Series
    selected: list
    val_r2: float
    test_r2: float
    condition: float
    max_corr: float
    intervals: pd.DataFrame
    status: str
    gap: float
    solver: str
    rounds: tuple = ()
    significant: bool = True
    design: Design | None = field(default=None, repr=False)

    def predict(self, newdata: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predictions for a DataFrame (its columns are matched by name through the formula,
        offset included) or for a design-matrix array whose columns are ``coef.index``.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.best.predict(df.head(3)).round(1)
        array([ 0.3, -1.4, -0.1])
        """
        if isinstance(newdata, pd.DataFrame):
            if self.design is None:
                raise TypeError("this model has no design to read a DataFrame with; pass the "
                                f"design matrix with columns {list(self.coef.index)}")
            nd = self.design.transform(newdata)
            return nd.X.to_numpy(dtype=float) @ self.coef.to_numpy() + nd.offset
        X = np.asarray(newdata, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.coef.size:
            raise ValueError(f"a design-matrix array needs {self.coef.size} columns "
                             f"({list(self.coef.index)}), got shape {X.shape}; or pass a "
                             "DataFrame")
        return X @ self.coef.to_numpy()


@dataclass(frozen=True, eq=False)
class HolisticResult:
    """Top models of the holistic pipeline: ``models`` (best first), ``table`` (one row per
    model), ``grid`` (every grid point's validation R^2), ``k_max``, ``gammas``, ``summary()``,
    ``predict(newdata)`` (best model).

    Also: ``design`` (the training design), ``split_sizes`` (training, validation and test
    rows), ``constraints`` (all that applied, the default ``CorrelationLimit`` included) and
    ``time`` (seconds).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
    ...                                  top=2, B=20, random_state=0)
    >>> len(res.models), res.k_max, res.split_sizes
    (2, 4, (60, 30, 30))
    >>> res.best.selected
    ['a', 'b']
    >>> res.grid.shape[0], len(res.gammas)
    (6, 2)
    """

    models: list
    grid: pd.DataFrame = field(repr=False)
    k_max: int
    gammas: np.ndarray
    design: Design = field(repr=False)
    split_sizes: tuple
    constraints: tuple
    time: float

    @property
    def best(self) -> HolisticModel:
        """The first model: significant models first, then by validation R^2.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.best is res.models[0], res.best.selected
        (True, ['a', 'b'])
        """
        return self.models[0]

    @property
    def table(self) -> pd.DataFrame:
        """One row per model, best first: rank, k, gamma, number selected, validation and
        test R^2, condition number, maximum |correlation|, significant, status, gap, solver and
        the selected columns.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.table[["rank", "k", "selected", "significant", "status"]]
           rank  k  selected  significant   status
        0     1  3         2         True  optimal
        1     2  2         2         True  optimal
        """
        return pd.DataFrame([{
            "rank": i + 1, "k": m.k, "gamma": m.gamma, "selected": len(m.selected),
            "val_r2": m.val_r2, "test_r2": m.test_r2, "condition": m.condition,
            "max_corr": m.max_corr, "significant": m.significant, "status": m.status,
            "gap": m.gap, "solver": m.solver, "columns": ", ".join(m.selected)}
            for i, m in enumerate(self.models)])

    def predict(self, newdata: pd.DataFrame) -> np.ndarray:
        """Predictions of the best model (see :meth:`HolisticModel.predict`).

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.predict(df.head(3)).round(1)
        array([ 0.3, -1.4, -0.1])
        """
        return self.best.predict(newdata)

    def summary(self) -> HolisticSummary:
        """The report (also ``str(result)``): the split, ``k_max``, the grid, the
        constraints, the :attr:`table`, and each model's coefficients with their bootstrap
        intervals.

        Returns a :class:`HolisticSummary` (a :class:`~mixmio.results.summary.Summary`):
        ``print(res.summary())`` or ``str()`` gives the text, Jupyter shows HTML tables, and
        ``summary["models"]`` (the :attr:`table`) and ``summary["model 1"]``,
        ``summary["model 2"]``, ... (each finalist's ``coef``, ``lower``, ``upper``) are
        DataFrames of the values.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> s = res.summary()
        >>> print(str(s).splitlines()[0])
        Holistic regression: y ~ a + b + c + d
        >>> "Model 2: k=2" in str(s), list(s.tables)
        (True, ['models', 'model 1', 'model 2'])
        >>> s["model 1"].columns.tolist()
        ['coef', 'lower', 'upper']
        """
        return HolisticSummary(self)

    def __str__(self) -> str:
        return str(self.summary())


class HolisticSummary(Summary):
    """The summary of a :class:`HolisticResult` (see :meth:`HolisticResult.summary`).

    Tables: ``models`` (:attr:`HolisticResult.table`, one row per finalist) and ``model 1``,
    ``model 2``, ... (each finalist's coefficients and bootstrap interval, for the columns in
    the model).
    """

    def __init__(self, result: HolisticResult):
        super().__init__()
        self.result = result

    def _build(self) -> list:
        res = self.result
        out: list[str | SummaryTable] = [f"Holistic regression: {res.design.formula}",
               f"split train/validation/test = {res.split_sizes}; k_max = {res.k_max}; "
               f"{len(res.gammas)} Gamma value(s); {len(res.grid)} grid models; "
               f"{res.time:.2f} s",
               "Constraints: " + ", ".join(repr(c) for c in res.constraints)]
        table = res.table
        out.append(SummaryTable("models", table, rows=table.drop(columns=["columns"]),
                                headers="keys",
                                options={"tablefmt": "simple", "showindex": False,
                                         "floatfmt": ".4g"}))
        for i, m in enumerate(res.models):
            out.append(f"\nModel {i + 1}: k={m.k}, Gamma={m.gamma:.4g}, status {m.status} "
                       f"(gap {m.gap:.2e}), condition {m.condition:.3g}")
            iv = m.intervals
            rows = [[name, f"{m.coef[name]:.4f}", f"{iv.loc[name, 'lower']:.4f}",
                     f"{iv.loc[name, 'upper']:.4f}"] for name in iv.index]
            frame = pd.DataFrame({"coef": m.coef[iv.index], "lower": iv["lower"],
                                  "upper": iv["upper"]})
            out.append(SummaryTable(f"model {i + 1}", frame, rows=rows,
                                    headers=["", "coef", "lower", "upper"],
                                    options={"tablefmt": "simple"}))
        return out


def response_values(design, df: pd.DataFrame) -> np.ndarray:
    from formulaic import Formula

    mm = Formula(f"{design.spec.response} ~ 1").get_model_matrix(df)
    return np.asarray(mm.lhs.iloc[:, 0], dtype=float) - 0.0


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / sst if sst > 0 else float("nan")
