"""The public constraint vocabulary of holistic regression (King 2015, ch. 3, constraints 3.5).

Constraint objects are small immutable values passed as ``constraints=[...]`` to
:func:`mixmio.mio_lm` and :func:`mixmio.mio_lmer`.  They say *what* must hold; the compilation
stage (:mod:`mixmio.problem.holistic.compile`) turns them, given the design, into linear rows on the
selection indicators ``z`` (``Problem.constraints``), sign caps, or objective terms.

Counting rule for ``k``: a cap counts **columns** (as King does), so a factor with three
treatment dummies uses three units of ``k`` when selected, and forced columns count toward
``k``.  The intercept is always in and never counts.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Constraint", "GroupSparsity", "CorrelationLimit", "ForceInclude", "Exclude",
           "Transforms", "Robust", "Significance", "JointClusterSelection", "robust_grid"]


def _is_real(x) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _names(columns) -> tuple[str, ...]:
    if columns is None:
        return ()
    if isinstance(columns, str):
        return (columns,)
    return tuple(str(c) for c in columns)


def _clusters(clusters) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if clusters is None:
        return ()
    if not isinstance(clusters, Mapping):
        raise TypeError("clusters must be a dict such as {'school': ['S12', 'S40']}")
    out = []
    for key, levels in clusters.items():
        lv = (levels,) if isinstance(levels, str) or np.isscalar(levels) else tuple(levels)
        out.append((str(key), tuple(str(v) for v in lv)))
    return tuple(out)


class Constraint:
    """Base class of the holistic constraints.

    Examples
    --------
    >>> import mixmio
    >>> isinstance(mixmio.CorrelationLimit(0.7), mixmio.problem.holistic.constraints.Constraint)
    True
    """

    def describe(self) -> str:
        """A one-line description of the constraint (its ``repr``).

        Examples
        --------
        >>> import mixmio
        >>> mixmio.CorrelationLimit(0.7).describe()
        'CorrelationLimit(rho=0.7)'
        """
        return repr(self)


@dataclass(frozen=True, repr=False)
class GroupSparsity(Constraint):
    """All of ``columns`` in or all out (one shared indicator).

    ``columns`` are design column names (``"f[T.b]"``) or term names (``"f"``: all its dummies).
    The dummies of a factor are grouped automatically in :func:`mixmio.mio_lm` (and in
    :func:`mixmio.mio_lmer` when ``k_fixed`` is set).  A group counts as its number of columns
    toward ``k``.

    Parameters
    ----------
    columns : a name or a list of names (design columns or terms) that enter together.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=100)
    >>> cons = [mixmio.GroupSparsity(["c", "d"]), mixmio.ForceInclude("c")]
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=3, constraints=cons)
    >>> sorted(fit.selected)  # forcing c in brings d with it
    ['a', 'c', 'd']
    """

    columns: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "columns", _names(self.columns))
        if len(self.columns) == 0:
            raise ValueError("GroupSparsity needs at least one column")

    def __repr__(self):
        return f"GroupSparsity({list(self.columns)})"


@dataclass(frozen=True, repr=False)
class CorrelationLimit(Constraint):
    """At most one column of every pair with ``|corr| > rho`` (training data).

    Pairs inside one group (a factor's dummies, a ``GroupSparsity``) are exempt: the group
    enters as a whole, and a rare baseline level makes its dummies strongly correlated.

    The largest feasible support ``k_max`` (a maximum independent set of the conflict graph,
    with the other constraints) is computed exactly with HiGHS; a cap above it is refused.

    Parameters
    ----------
    rho : correlation threshold in [0, 1) (default 0.8).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    >>> df["e"] = df.a + 0.01 * rng.normal(size=100)  # a near copy of a
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=100)
    >>> fit = mixmio.mio_lm("y ~ a + b + e", df, k=None,
    ...                     constraints=[mixmio.CorrelationLimit(0.9)])
    >>> fit.k_max, len(fit.selected)  # a and e never enter together
    (2, 2)
    """

    rho: float = 0.8

    def __post_init__(self):
        if not (_is_real(self.rho) and 0 <= self.rho < 1):
            raise ValueError(f"CorrelationLimit rho must be in [0, 1), got {self.rho!r}")

    def __repr__(self):
        return f"CorrelationLimit(rho={self.rho})"


@dataclass(frozen=True, repr=False)
class _Selection(Constraint):
    columns: tuple[str, ...] = ()
    clusters: tuple = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "columns", _names(self.columns))
        object.__setattr__(self, "clusters", _clusters(self.clusters or None))
        if not self.columns and not self.clusters:
            raise ValueError(f"{type(self).__name__} needs columns or clusters")

    def __repr__(self):
        parts = []
        if self.columns:
            parts.append(repr(list(self.columns)))
        if self.clusters:
            parts.append("clusters=" + repr({k: list(v) for k, v in self.clusters}))
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class ForceInclude(_Selection):
    """Columns (fixed effects) and/or clusters that must be selected (``z = 1``).

    ``clusters`` maps a grouping factor (every capped column of its terms) or a random-effect
    column label (``"1|school"``) to level names: ``ForceInclude(clusters={"school": ["S12"]})``.
    Forced columns count toward ``k``.

    Parameters
    ----------
    columns : a fixed-effect column or term name, or a list of them.
    clusters : ``{grouping factor or column label: level or list of levels}``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=100)
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=2,
    ...                     constraints=[mixmio.ForceInclude(["d"])])
    >>> sorted(fit.selected)
    ['a', 'd']
    >>> mixmio.ForceInclude(clusters={"Subject": ["308"]})  # for mio_lmer
    ForceInclude(clusters={'Subject': ['308']})
    """


@dataclass(frozen=True, repr=False)
class Exclude(_Selection):
    """Columns and/or clusters that must stay out (``z = 0``); same arguments as
    :class:`ForceInclude`.

    Parameters
    ----------
    columns : a fixed-effect column or term name, or a list of them.
    clusters : ``{grouping factor or column label: level or list of levels}``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=100)
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=2, constraints=[mixmio.Exclude("b")])
    >>> "b" in fit.selected
    False
    >>> mixmio.Exclude(clusters={"Subject": "309"})  # for mio_lmer
    Exclude(clusters={'Subject': ['309']})
    """


@dataclass(frozen=True, repr=False)
class Transforms(Constraint):
    """Candidate non-linear forms of numeric variables: ``x^2``, ``sqrt(x)`` and ``log(x)``.

    ``log(x + 1e-5)`` is used when ``x`` has zeros; a variable with negative values is refused.
    At most one form of each variable (the original included) is selected.  The forms are added
    to the formula (``I(x ** 2)``, ``np.sqrt(x)``, ``np.log(x)``), so ``predict`` recomputes
    them on new data.

    Parameters
    ----------
    variables : a numeric variable name or a list of them.
    forms : among ``"square"``, ``"sqrt"`` and ``"log"`` (default all three).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.uniform(1, 5, size=100)})
    >>> df["y"] = 3 * np.log(df.x) + 0.1 * rng.normal(size=100)
    >>> fit = mixmio.mio_lm("y ~ x", df, k=1, constraints=[mixmio.Transforms(["x"])])
    >>> fit.selected
    ['np.log(x)']
    """

    variables: tuple[str, ...]
    forms: tuple[str, ...] = ("square", "sqrt", "log")

    def __post_init__(self):
        object.__setattr__(self, "variables", _names(self.variables))
        object.__setattr__(self, "forms", _names(self.forms))
        bad = [f for f in self.forms if f not in ("square", "sqrt", "log")]
        if bad or not self.variables:
            raise ValueError(f"Transforms needs variables and forms among 'square', 'sqrt', "
                             f"'log' (got forms {bad})")

    def __repr__(self):
        return f"Transforms({list(self.variables)})"


@dataclass(frozen=True, repr=False)
class Robust(Constraint):
    """Adds ``gamma * ||beta||_1`` (selectable fixed effects) to the objective.

    By King's Theorem 3 this is the worst case over column-wise perturbations of X bounded by
    gamma.  ``gamma="grid"`` asks :func:`mixmio.holistic_regression` to tune it over
    :func:`robust_grid` (``{0}`` plus ``n_grid - 1`` geometric values up to ``||X'y||_inf``).

    Parameters
    ----------
    gamma : a number >= 0, or ``"grid"`` (tuned by :func:`mixmio.holistic_regression`; a fit
        by :func:`mixmio.mio_lm` needs a number).
    n_grid : number of grid values with ``gamma="grid"`` (0 included).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=100)
    >>> plain = mixmio.mio_lm("y ~ a + b + c + d", df, k=2)
    >>> robust = mixmio.mio_lm("y ~ a + b + c + d", df, k=2,
    ...                        constraints=[mixmio.Robust(gamma=20.0)])
    >>> sorted(robust.selected), bool(abs(robust.coef["a"]) < abs(plain.coef["a"]))
    (['a', 'b'], True)
    """

    gamma: float | str = "grid"
    n_grid: int = 10

    def __post_init__(self):
        g = self.gamma
        if not (isinstance(g, str) and g == "grid" or (_is_real(g) and np.isfinite(g)
                                                         and g >= 0)):
            raise ValueError(f"Robust gamma must be a non-negative number or 'grid', got {g!r}")
        if int(self.n_grid) < 1:
            raise ValueError("Robust n_grid must be at least 1")

    def __repr__(self):
        return f"Robust(gamma={self.gamma!r})"

    @staticmethod
    def grid(X: np.ndarray, y: np.ndarray, n: int = 10, ratio: float = 1e-3) -> np.ndarray:
        """The Gamma grid for ``X`` and ``y``; the same as :func:`robust_grid`.

        Examples
        --------
        >>> import numpy as np, mixmio
        >>> mixmio.Robust.grid(np.eye(3), np.array([1.0, 2.0, 4.0]), n=3).round(3).tolist()
        [0.0, 0.004, 4.0]
        """
        return robust_grid(X, y, n, ratio)


def robust_grid(X: np.ndarray, y: np.ndarray, n: int = 10, ratio: float = 1e-3) -> np.ndarray:
    """``{0}`` plus ``n - 1`` geometric values from ``ratio * G`` to ``G = ||X'y||_inf``.

    ``X`` and ``y`` are the (centred) selectable columns and response; at ``G`` the l1 term alone
    forces ``beta = 0`` in the unconstrained problem.

    Examples
    --------
    >>> import numpy as np
    >>> robust_grid(np.eye(3), np.array([1.0, 2.0, 4.0]), n=3).round(3).tolist()
    [0.0, 0.004, 4.0]
    """
    G = float(np.max(np.abs(np.asarray(X).T @ np.asarray(y)))) if np.size(X) else 0.0
    if n <= 1 or G == 0:
        return np.zeros(1)
    return np.concatenate([[0.0], np.geomspace(ratio * G, G, n - 1)])


@dataclass(frozen=True, repr=False)
class Significance(Constraint):
    """King's stage 3: bootstrap the selected model; when a coefficient is not significant at
    ``alpha`` (its percentile interval covers 0) or the condition number of the selected
    columns' correlation matrix exceeds ``max_condition``, add the cut
    ``sum_{i in S} z_i <= |S| - 1`` and solve again, at most ``max_rounds`` solves in all.

    The pairs bootstrap draws the estimator the fit reports (least squares on the support
    after a refit, else the penalised one).  Forced-in columns are reported when
    insignificant but are never cut.  ``random_state=None`` uses the fit's ``random_state``.
    The fit records every round and cut (``fit.rounds``).

    Parameters
    ----------
    alpha : level of the two-sided percentile intervals (``1 - alpha`` coverage).
    B : bootstrap replicates per round (at least 10).
    max_condition : largest condition number allowed for the selected columns.
    max_rounds : most solves in all.
    random_state : seed of the bootstrap (``None``: the fit's).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=100)
    >>> sig = mixmio.Significance(B=20, random_state=0)
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=3, constraints=[sig])
    >>> sorted(fit.selected), len(fit.rounds) >= 1
    (['a', 'b'], True)
    """

    alpha: float = 0.05
    B: int = 200
    max_condition: float = 30.0
    max_rounds: int = 3
    random_state: int | Sequence[int] | None = None

    def __post_init__(self):
        if not (_is_real(self.alpha) and 0 < self.alpha < 1):
            raise ValueError(f"Significance alpha must be in (0, 1), got {self.alpha!r}")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                   for v in (self.B, self.max_rounds)) or not _is_real(self.max_condition):
            raise TypeError("Significance B and max_rounds must be integers and "
                            f"max_condition a number, got {self!r}")
        if int(self.B) < 10 or int(self.max_rounds) < 1 or not self.max_condition > 1:
            raise ValueError("Significance needs B >= 10, max_rounds >= 1, max_condition > 1")

    def __repr__(self):
        return (f"Significance(alpha={self.alpha}, B={self.B}, "
                f"max_condition={self.max_condition}, max_rounds={self.max_rounds})")


@dataclass(frozen=True, repr=False)
class JointClusterSelection(Constraint):
    """One indicator per cluster across a random term's columns: a cluster deviates in every
    column of ``term`` (intercept and slopes) or in none.  ``term`` is the term's label
    (``"1 + x|school"``) or its grouping factor when that has one term (``"school"``).

    Used with :func:`mixmio.mio_lmer`, e.g. ``mixmio.mio_lmer("Reaction ~ Days + (Days |
    Subject)", data, k=3, constraints=[mixmio.JointClusterSelection("Subject")])`` selects
    at most 3 subjects, each deviating in intercept and slope together.

    Parameters
    ----------
    term : the random term's label or its grouping factor.

    Examples
    --------
    >>> import mixmio
    >>> js = mixmio.JointClusterSelection("Subject")
    >>> js, js.term
    (JointClusterSelection('Subject'), 'Subject')
    """

    term: str

    def __repr__(self):
        return f"JointClusterSelection({self.term!r})"
