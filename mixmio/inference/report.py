"""The bootstrap significance report: which clusters differ, and which fixed effects are stable.

Flagged clusters are the cluster effects with bootstrap selection frequency at least
``min_frequency`` (default 0.5), ranked by selection frequency, then by |estimate|.  Direction
is the sign of the full-data estimate (``above`` / ``below`` the population line); for a
cluster the full-data fit did not select, the sign of its mean estimate over the replicates
that selected it.  Stable fixed effects are those whose bootstrap interval excludes 0.
Selection frequency is not an error rate: the residual and cluster bootstraps resample around
the sparse fit, so clusters it selected tend to be reselected (in a one-off simulation with 3 true
deviating clusters of 30 and k = 6, about 2 null clusters per data set reached frequency 0.5,
none with an interval excluding 0).  The report says so; ``excludes_0`` and the p-value are
the columns to read, and stability selection (``fit.stability``) bounds false flags.
Renderings: ``str()`` (plain text), ``to_markdown()``, ``to_html()`` / ``_repr_html_``,
``to_frame()`` (both tables stacked, with a ``section`` column).
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

CLUSTER_COLUMNS = ["group", "term", "level", "estimate", "lower", "upper", "se",
                   "selection_frequency", "sign_stability", "p_value", "direction",
                   "excludes_0"]
FIXED_COLUMNS = ["term", "estimate", "lower", "upper", "se", "selection_frequency", "p_value"]


def _excludes_zero(t: pd.DataFrame) -> np.ndarray:
    lo, hi = t["lower"].to_numpy(), t["upper"].to_numpy()
    return ((lo > 0) | (hi < 0)) & np.isfinite(lo) & np.isfinite(hi)


def check_frequency(min_frequency) -> float:
    """``min_frequency`` as a float in [0, 1], else a ValueError."""
    if (isinstance(min_frequency, bool) or not isinstance(min_frequency, numbers.Real)
            or not 0 <= min_frequency <= 1):  # type: ignore[operator]  # typeshed: Real, no "<"
        raise ValueError(f"min_frequency must be in [0, 1], got {min_frequency!r}")
    return float(min_frequency)


class ReportRendering:
    """Text, Markdown and HTML renderings shared by the bootstrap reports: a title, the
    ``header`` lines, then titled tables (:meth:`_sections`: (title, DataFrame) pairs; an
    empty table prints as "(none)")."""

    TITLE = ""
    CSS = ""
    header: tuple[str, ...]

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        raise NotImplementedError

    @staticmethod
    def _rows(t: pd.DataFrame) -> list[list]:
        return [[f"{v:.4g}" if isinstance(v, float) else
                 ("yes" if v is True or v is np.True_ else
                  "no" if v is False or v is np.False_ else v) for v in row]
                for row in t.itertuples(index=False)]

    def _tables(self, fmt: str) -> list[tuple[str, str]]:
        return [(title, tabulate(self._rows(t), headers=list(t.columns), tablefmt=fmt,
                                 disable_numparse=True) if len(t) else "(none)")
                for title, t in self._sections()]

    def __str__(self) -> str:
        lines = [self.TITLE, *self.header]
        for title, body in self._tables("simple"):
            lines += ["", f"{title}:", body]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return str(self)

    def to_markdown(self) -> str:
        """The report as Markdown: the header as a bullet list, the tables as pipe tables."""
        lines = [f"## {self.TITLE}", ""]
        lines += [f"- {h}" for h in self.header[0].split("\n")] + [f"- {h}" for h in
                                                                      self.header[1:]]
        for title, body in self._tables("pipe"):
            lines += ["", f"### {title}", "", body]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The report as an HTML fragment (a ``div``; also what Jupyter shows)."""
        parts = [f"<div class='{self.CSS}'><h4>{html.escape(self.TITLE)}</h4>",
                 "<ul>" + "".join(f"<li>{html.escape(h)}</li>" for h in
                                  "\n".join(self.header).split("\n")) + "</ul>"]
        for title, body in self._tables("html"):
            parts.append(f"<p><b>{html.escape(title)}</b></p>")
            parts.append(body if body != "(none)" else "<p>(none)</p>")
        return "\n".join(parts) + "</div>"

    def _repr_html_(self) -> str:
        return self.to_html()


@dataclass(frozen=True, eq=False)
class BootstrapReport(ReportRendering):
    """The bootstrap significance report of a :class:`~mixmio.inference.BootstrapResult`.

    ``clusters``: the flagged cluster effects (selection frequency >= ``min_frequency``),
    ranked by frequency then |estimate|, with interval, SE, frequency, sign stability,
    p-value, ``direction`` (``above`` / ``below``) and ``excludes_0``.  ``fixed``: the fixed
    effects whose interval excludes 0.  ``header``: the lines describing the bootstrap and
    the two rules.  Made by ``boot.report()`` (:meth:`from_bootstrap`).

    Examples
    --------
    >>> import mixmio
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> report = fit.bootstrap(B=20, random_state=1, progress=False).report()
    >>> report.clusters[["level", "direction", "excludes_0"]]
      level direction  excludes_0
    0   309     below        True
    1   310     below        True
    2   337     above        True
    >>> report.fixed["term"].tolist(), report.min_frequency
    (['Intercept', 'Days'], 0.5)
    >>> print(str(report).splitlines()[0])
    Bootstrap significance report
    """

    clusters: pd.DataFrame
    fixed: pd.DataFrame
    header: tuple[str, ...]
    min_frequency: float

    TITLE = "Bootstrap significance report"
    CSS = "mixmio-bootstrap-report"

    @classmethod
    def from_bootstrap(cls, boot: Any, min_frequency: float = 0.5
                       ) -> BootstrapReport:
        """Build the report of ``boot``: clusters with bootstrap selection frequency >=
        ``min_frequency`` (in [0, 1]) and the fixed effects whose interval excludes 0.

        Examples
        --------
        >>> import mixmio
        >>> from mixmio.inference import BootstrapReport
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> report = BootstrapReport.from_bootstrap(boot, min_frequency=0.9)
        >>> report.clusters["level"].tolist()
        ['309', '310', '337']
        """
        min_frequency = check_frequency(min_frequency)
        t = boot.table
        ok = boot.draws[boot.ok]
        rnd = t[(t["kind"] == "random") & (t["selection_frequency"] >= min_frequency)].copy()
        idx = rnd.index.to_numpy()
        direction = np.sign(rnd["estimate"].to_numpy())
        for i, pos in enumerate(idx):
            if direction[i] == 0:
                col = ok[:, pos]
                nz = col[np.isfinite(col) & (col != 0)]
                direction[i] = np.sign(nz.mean()) if len(nz) else 0
        rnd["direction"] = np.where(direction > 0, "above", np.where(direction < 0, "below",
                                                                     ""))
        rnd["excludes_0"] = _excludes_zero(rnd)
        order = np.lexsort((-np.abs(rnd["estimate"].to_numpy()),
                            -rnd["selection_frequency"].to_numpy()))
        clusters = rnd.iloc[order][CLUSTER_COLUMNS].reset_index(drop=True)
        fx = t[t["kind"] == "fixed"]
        fixed = fx[_excludes_zero(fx)][FIXED_COLUMNS].reset_index(drop=True)
        header = (boot.describe(),
                  f"Flagged clusters: bootstrap selection frequency >= {min_frequency:g} "
                  f"({len(clusters)} of {int((t['kind'] == 'random').sum())} cluster effects), "
                  "ranked by frequency then |estimate|",
                  f"Stable fixed effects: {100 * boot.level:.3g}% {boot.ci} interval "
                  f"excludes 0 ({len(fixed)} of {len(fx)})",
                  "Reading the flags: a high selection frequency alone is not evidence (a "
                  "resampled fit tends to reselect what the fit selected); trust flags whose "
                  "interval excludes 0, and use fit.stability() for a bound on false flags")
        return cls(clusters, fixed, header, float(min_frequency))

    # renderings ------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Both tables stacked, with a ``section`` column (``"flagged cluster"`` or
        ``"stable fixed effect"``); columns a section lacks are NaN.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> report = fit.bootstrap(B=20, random_state=1, progress=False).report()
        >>> report.to_frame()[["section", "term", "level"]]
                       section       term level
        0      flagged cluster  Intercept   309
        1      flagged cluster  Intercept   310
        2      flagged cluster  Intercept   337
        3  stable fixed effect  Intercept   NaN
        4  stable fixed effect       Days   NaN
        """
        c = self.clusters.assign(section="flagged cluster")
        f = self.fixed.assign(section="stable fixed effect")
        return pd.concat([c, f], ignore_index=True)[
            ["section"] + [x for x in CLUSTER_COLUMNS if x in c or x in f]]

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        return [("Flagged clusters", self.clusters), ("Stable fixed effects", self.fixed)]

    def to_markdown(self) -> str:
        """The report as Markdown: the header as a bullet list, the tables as pipe tables.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> report = fit.bootstrap(B=20, random_state=1, progress=False).report()
        >>> md = report.to_markdown()
        >>> md.splitlines()[0], "### Flagged clusters" in md
        ('## Bootstrap significance report', True)
        """
        return super().to_markdown()

    def to_html(self) -> str:
        """The report as an HTML fragment (a ``div``; also what Jupyter shows).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> report = fit.bootstrap(B=20, random_state=1, progress=False).report()
        >>> html_text = report.to_html()
        >>> html_text.startswith("<div class='mixmio-bootstrap-report'>"), html_text.count("<table")
        (True, 2)
        """
        return super().to_html()
