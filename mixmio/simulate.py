"""Simulated clustered data from the seed paper's design (METHODS section 8).

The data-generating process of Sankaranarayanan, Hossain and Chen (seed 001, Section 3 and
supplement B), as written in the authors' simulation code (``simul.jl``: ``rand_eff_sparse``,
``rand_eff_gaussian``, ``data_gen_clust``):

    gamma_k   sparse:   ceil(K (1 - zero_fraction)) clusters get +-sigma_cluster (fair coin),
                        the rest 0
              gaussian: gamma_k ~ N(0, sigma_gamma2)
    beta_v    uniform on {-1, 0, 1},  v = 1..P
    x_iv      = xi_iv gamma_{c(i)} + N(0, 1),   xi_iv ~ N(0, 1)
    y_i       = x_i' beta + gamma_{c(i)} + eps_i,   eps_i ~ N(0, noise_sd^2)

with ``rows_per_cluster`` rows in every cluster of every set, and independent train, validation
and test sets that share beta and gamma.

Choices where the seed text and METHODS leave room (each follows the authors' ``simul.jl``
unless said otherwise):

- Effect size.  The paper's text says the non-zero effects are "+1, -1 with equal
  probability"; the authors' code multiplies the signs by ``sigma_clust = 10``.  The
  default ``sigma_cluster=10`` follows the code: with +-1 the paper's OLS errors in
  Tables B1-B3 (0.05-0.46, largest at high sparsity) cannot be reached, with +-10 they are
  (see ``benchmarks/results/sim_paper.md``).  In the Gaussian regime the same code
  parameter is the variance: ``gamma = sqrt(sigma_clust) * N(0, 1)``.
- The number of non-zero clusters is ``ceil(K * (1 - zero_fraction))`` (code:
  ``ceil(k * sparse)`` with ``sparse`` the non-zero share); ``zero_fraction=1`` gives
  all zeros.  Which clusters are non-zero is a uniform random choice here (the code
  takes the first ones; clusters are exchangeable, so no estimator can tell).
- ``xi`` is drawn afresh for every row *and covariate* (the code draws it inside the
  loop over covariates); METHODS writes ``xi_i``.  Hence the linear correlation of x with
  gamma is zero in expectation; the confounding is in the scale of x (|x| and gamma^2
  are correlated), which makes OLS ignoring clusters heteroscedastic and inefficient.
- The true mean has no intercept; the DataFrames carry none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SimulatedData", "simulate"]

_REGIMES = ("sparse", "gaussian")
_SET_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class SimulatedData:
    """Data sets drawn by :func:`simulate` and the truth behind them.

    Attributes
    ----------
    sets : the independent data sets, each a DataFrame with columns ``y``, ``x1`` .. ``xP``
        and ``cluster`` (integer labels 0 .. K-1, ``rows_per_cluster`` rows per cluster).
    beta : true fixed effects, indexed ``x1`` .. ``xP`` (no intercept: the true mean has none).
    gamma : true cluster intercepts, indexed by cluster label 0 .. K-1.
    regime : ``"sparse"`` or ``"gaussian"``.
    noise_sd : standard deviation of the noise.
    """

    sets: tuple[pd.DataFrame, ...]
    beta: pd.Series
    gamma: pd.Series
    regime: str
    noise_sd: float

    @property
    def train(self) -> pd.DataFrame:
        """The first set."""
        return self._set(0)

    @property
    def validation(self) -> pd.DataFrame:
        """The second set (needs ``n_sets >= 2``)."""
        return self._set(1)

    @property
    def test(self) -> pd.DataFrame:
        """The third set (needs ``n_sets >= 3``)."""
        return self._set(2)

    @property
    def zero_share(self) -> float:
        """Share of clusters whose true gamma is exactly 0."""
        return float(np.mean(self.gamma.to_numpy() == 0))

    @property
    def icc(self) -> float:
        """Realised intra-cluster correlation var(gamma) / (var(gamma) + noise_sd^2), with
        the population variance (ddof = 0) of the K drawn effects."""
        v = float(np.var(self.gamma.to_numpy()))
        return v / (v + self.noise_sd**2)

    def _set(self, i: int) -> pd.DataFrame:
        if i >= len(self.sets):
            raise AttributeError(f"no {_SET_NAMES[i]} set: simulated with n_sets="
                                 f"{len(self.sets)}")
        return self.sets[i]


def simulate(n_clusters: int, n_features: int, *, rows_per_cluster: int = 50,
             regime: str = "sparse", zero_fraction: float = 0.9,
             sigma_cluster: float = 10.0, sigma_gamma2: float = 10.0,
             noise_sd: float = math.sqrt(0.5), n_sets: int = 3,
             random_state: int | np.random.Generator | None = None) -> SimulatedData:
    """Draw clustered data from the seed paper's simulation design (METHODS section 8).

    Covariates are confounded with the cluster effect through their scale:
    ``x_iv = xi_iv * gamma_{c(i)} + N(0, 1)`` with ``xi_iv ~ N(0, 1)``, so within cluster k
    every covariate has variance ``1 + gamma_k**2``; the response is
    ``y = x' beta + gamma_{c(i)} + N(0, noise_sd**2)``.  ``beta_v`` is uniform on
    {-1, 0, 1}.  Sets are independent draws of x and noise sharing beta and gamma.

    Parameters
    ----------
    n_clusters : K, the number of clusters (the paper: 4, 10, 14).
    n_features : P, the number of covariates (the paper: 10, 25, 35).
    rows_per_cluster : rows per cluster in every set (the paper: 50).
    regime : ``"sparse"`` (gamma in {-sigma_cluster, 0, +sigma_cluster}) or ``"gaussian"``
        (gamma_k ~ N(0, sigma_gamma2)).
    zero_fraction : sparse regime: the nominal share of clusters with gamma = 0 (the paper's
        "true sparsity", 90% .. 0%).  ``ceil(K * (1 - zero_fraction))`` clusters are non-zero,
        as in the authors' code, so the realised share of zeros can be below the nominal one
        (K = 4 at 90%: one non-zero cluster, 75% zeros).
    sigma_cluster : sparse regime: magnitude of the non-zero effects.
    sigma_gamma2 : gaussian regime: the *variance* of gamma_k (the paper: 10 .. 100).
    noise_sd : standard deviation of the noise (the paper: sqrt(0.5)).
    n_sets : number of independent sets sharing beta and gamma (train, validation, test).
    random_state : seed or numpy Generator; everything is drawn from it.

    Returns
    -------
    SimulatedData with ``sets`` (``.train``, ``.validation``, ``.test``), ``beta`` and
    ``gamma`` (pandas Series).

    Notes
    -----
    The choices where the seed text and METHODS leave room are listed in the module
    docstring.

    Examples
    --------
    >>> from mixmio.simulate import simulate
    >>> sim = simulate(4, 10, zero_fraction=0.5, random_state=0)
    >>> sim.train.shape, list(sim.train.columns[:3]), list(sim.train.columns[-2:])
    ((200, 12), ['y', 'x1', 'x2'], ['x10', 'cluster'])
    >>> sorted(set(sim.gamma.abs()))
    [0.0, 10.0]
    >>> sim.zero_share
    0.5
    >>> len(sim.sets), sim.test["cluster"].value_counts().tolist()
    (3, [50, 50, 50, 50])
    """
    _check_args(n_clusters, n_features, rows_per_cluster, regime, zero_fraction,
                sigma_cluster, sigma_gamma2, noise_sd, n_sets)
    rng = np.random.default_rng(random_state)
    K, P = int(n_clusters), int(n_features)
    gamma = _draw_gamma(rng, K, regime, zero_fraction, sigma_cluster, sigma_gamma2)
    beta = rng.choice(np.array([-1.0, 0.0, 1.0]), size=P)
    columns = [f"x{v + 1}" for v in range(P)]
    sets = tuple(_draw_set(rng, gamma, beta, rows_per_cluster, noise_sd, columns)
                 for _ in range(n_sets))
    return SimulatedData(
        sets=sets,
        beta=pd.Series(beta, index=columns, name="beta"),
        gamma=pd.Series(gamma, index=pd.RangeIndex(K, name="cluster"), name="gamma"),
        regime=regime, noise_sd=float(noise_sd))


def _draw_gamma(rng: np.random.Generator, K: int, regime: str, zero_fraction: float,
                sigma_cluster: float, sigma_gamma2: float) -> np.ndarray:
    if regime == "gaussian":
        return math.sqrt(sigma_gamma2) * rng.standard_normal(K)
    # round first so that 1 - 0.7 = 0.30000000000000004 does not ceil 3.0 up to 4
    n_nonzero = math.ceil(round(K * (1.0 - zero_fraction), 9))
    gamma = np.zeros(K)
    where = rng.choice(K, size=n_nonzero, replace=False)
    gamma[np.sort(where)] = sigma_cluster * rng.choice(np.array([-1.0, 1.0]), size=n_nonzero)
    return gamma


def _draw_set(rng: np.random.Generator, gamma: np.ndarray, beta: np.ndarray, rows: int,
              noise_sd: float, columns: list[str]) -> pd.DataFrame:
    K, P = len(gamma), len(beta)
    cluster = np.repeat(np.arange(K), rows)
    g = gamma[cluster]
    X = rng.standard_normal((K * rows, P)) * g[:, None] + rng.standard_normal((K * rows, P))
    y = X @ beta + g + noise_sd * rng.standard_normal(K * rows)
    frame = pd.DataFrame(X, columns=columns)
    frame.insert(0, "y", y)
    frame["cluster"] = cluster
    return frame


def _check_args(n_clusters, n_features, rows_per_cluster, regime, zero_fraction,
                sigma_cluster, sigma_gamma2, noise_sd, n_sets) -> None:
    for name, value in (("n_clusters", n_clusters), ("n_features", n_features),
                        ("rows_per_cluster", rows_per_cluster), ("n_sets", n_sets)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if regime not in _REGIMES:
        raise ValueError(f"regime must be one of {_REGIMES}, got {regime!r}")
    if not (isinstance(zero_fraction, (int, float, np.number))
            and 0.0 <= float(zero_fraction) <= 1.0):
        raise ValueError(f"zero_fraction must be in [0, 1], got {zero_fraction!r}")
    for name, value in (("sigma_cluster", sigma_cluster), ("sigma_gamma2", sigma_gamma2),
                        ("noise_sd", noise_sd)):
        if not (isinstance(value, (int, float, np.number)) and math.isfinite(value)
                and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
