"""CVResult: the cross-validated choice of the cap k (:func:`mixmio.cv_lmer`,
:func:`mixmio.cv_glmer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixmio.results.lmer import MioLmerResult

__all__ = ["CVResult"]


@dataclass(frozen=True, eq=False)
class CVResult:
    """Cross-validated choice of k.

    ``table``: one row per cap: ``k``, ``mean`` and ``se`` of the held-out score over folds
    (``metric``: mean squared error for mio_lmer, mean deviance per row for mio_glmer),
    ``n_certified`` (folds whose fit at that cap is proven optimal) and one column per fold
    (``fold_1``, ...).  ``k_best`` (by ``rule``), ``k_min`` and ``k_1se``, ``fit``
    (the refit at ``k_best`` on all rows, its ``cv_result`` is this object), ``folds`` (test
    row positions of each fold), ``plot()``.

    >>> import mixmio
    >>> exam = mixmio.datasets.load("Exam")
    >>> cv = mixmio.cv_lmer("normexam ~ standLRT + (1 | school)", exam, k=[0, 5, 10, 20],
    ...                     random_state=1)
    >>> cv.k_best in (0, 5, 10, 20), cv.fit.cv_result is cv
    (True, True)
    """

    formula: str
    cv: str
    rule: str
    predict_new: str
    table: pd.DataFrame
    folds: list = field(repr=False)
    caps: dict = field(repr=False)
    k_min: Any = None
    k_1se: Any = None
    fit: MioLmerResult | None = field(default=None, repr=False)
    #: the held-out score: "mse" (mio_lmer) or "deviance" (mio_glmer: mean deviance per row)
    metric: str = "mse"

    @property
    def k_best(self):
        """The chosen cap: ``k_min`` under ``rule="min"``, ``k_1se`` under ``"1se"``."""
        return self.k_min if self.rule == "min" else self.k_1se

    @property
    def scores(self) -> pd.DataFrame:
        """Held-out score (``metric``: mean squared error, or mean deviance per row), caps by
        folds."""
        return self.table.set_index("k").filter(like="fold_")

    def plot(self, ax: Axes | None = None) -> Figure:
        """The CV curve (mean +- 1 SE per cap), with the minimum and the 1-SE choice marked."""
        from mixmio.results.plots import new_axes

        t = self.table
        x = np.array([sum(self.caps[key].values()) for key in t["k"]], dtype=float)
        fig, ax = new_axes(ax, 4.0)
        ax.errorbar(x, t["mean"], yerr=t["se"], marker="o", ms=3, capsize=2, lw=1)
        xm = sum(self.caps[self.k_min].values())
        x1 = sum(self.caps[self.k_1se].values())
        mark = {"min": "", "1se": ""}
        mark[self.rule] = ", chosen"
        ax.axvline(xm, color="tab:red", ls="--", lw=1, label=f"min (k={self.k_min}{mark['min']})")
        ax.axvline(x1, color="tab:green", ls=":", lw=1.5,
                   label=f"1 SE (k={self.k_1se}{mark['1se']})")
        ax.axhline(float(t.loc[t["k"] == self.k_min, "mean"].iloc[0])
                   + float(t.loc[t["k"] == self.k_min, "se"].iloc[0]), color="gray", lw=0.5)
        group = _grouping_name(self.formula)
        ax.set_xlabel(f"k (cap on the number of non-zero {group} effects)")
        what = "MSE" if self.metric == "mse" else "mean deviance"
        ax.set_ylabel(f"held-out {what} ({self.cv} folds)")
        ax.legend()
        return fig

    def __repr__(self) -> str:
        return (f"<CVResult {self.formula!r}: {self.cv} CV over {len(self.table)} caps, "
                f"k_best={self.k_best!r} (rule {self.rule!r})>")

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)


def _grouping_name(formula: str) -> str:
    """The grouping factors of a formula's random terms ("school", "a, b"), or "cluster"."""
    import re

    groups = re.findall(r"\|\s*([^)|]+?)\s*\)", formula)
    return ", ".join(dict.fromkeys(g.strip() for g in groups)) or "cluster"


# ---------------------------------------------------------------------------- one fold
