"""Summaries of fitted models: a shared base (:class:`Summary`) and the lme4-style
:class:`LmerSummary` of a MioLmerResult, rendered with tabulate (text, HTML and Markdown).

Every front door's ``fit.summary()`` returns a :class:`Summary`: ``print(fit.summary())`` (or
``str()``) gives the text table, Jupyter shows ``_repr_html_``, and the tables are DataFrames
of the values (numbers as numbers, not the rounded text): ``summary.tables`` (by name) or
``summary["name"]`` / ``summary[i]``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import numpy as np
import pandas as pd
from tabulate import tabulate

__all__ = ["Summary", "SummaryTable", "LmerSummary", "key_value_table"]


@dataclass(frozen=True, eq=False)
class SummaryTable:
    """One table of a :class:`Summary`.

    ``frame`` holds the values (what ``summary[name]`` returns); ``rows`` and ``headers`` are
    the formatted cells the text and HTML show (``rows=None``: ``frame`` itself is rendered;
    ``headers="keys"`` then shows its column names), ``title`` the line(s) above it and
    ``options`` the tabulate keywords of the text (``tablefmt``, ``colalign``,
    ``disable_numparse``, ...).
    """

    name: str
    frame: pd.DataFrame
    rows: Sequence | None = None
    headers: Sequence[str] | str = ()
    title: str | None = None
    options: Mapping = field(default_factory=dict)

    def render(self, tablefmt: str | None = None) -> str:
        """The table in tabulate's ``tablefmt`` (default: the text format of ``options``)."""
        opts = dict(self.options)
        if tablefmt is not None:
            opts["tablefmt"] = tablefmt
        headers, rows = self.headers, self.frame if self.rows is None else self.rows
        if tablefmt == "pipe":
            if not headers:  # Markdown wants a header row
                headers = [""] * _width(self)
            if not isinstance(headers, str):
                headers = [_md_cell(h) for h in headers]
            if not isinstance(rows, pd.DataFrame):
                rows = [[_md_cell(c) for c in r] for r in rows]
        return tabulate(rows, headers=headers, **opts)


class Summary:
    """A model summary: lines of text and named tables, in print order.

    ``str(s)`` / ``print(s)``: the text; ``repr(s)`` is the text too, so a bare ``fit.summary()``
    at a prompt prints it; Jupyter shows :meth:`_repr_html_`.  ``s.tables``: a dict of the
    tables as DataFrames, by name; ``s["name"]`` or ``s[i]`` (position) gives one of them.
    ``as_text()``, ``as_html()`` (statsmodels' names) and ``to_markdown()`` give the three
    renderings.  ``"text" in s`` tests the text, as when ``summary()`` returned a string.

    Built from ``blocks``: strings (lines; may hold newlines) and :class:`SummaryTable` items.
    Subclasses build them in :meth:`_build` from the fit they hold.

    Examples
    --------
    >>> import pandas as pd
    >>> from mixmio.results.summary import Summary, SummaryTable
    >>> t = pd.DataFrame({"estimate": [1.5, -0.25]}, index=["a", "b"])
    >>> s = Summary(["My model", SummaryTable(
    ...     "coef", t, rows=[["a", "1.50"], ["b", "-0.25"]], headers=["", "coef"],
    ...     options={"disable_numparse": True, "colalign": ("left", "right")})])
    >>> print(s)
    My model
          coef
    --  ------
    a     1.50
    b    -0.25
    >>> float(s["coef"].loc["b", "estimate"]), list(s.tables), "<table>" in s._repr_html_()
    (-0.25, ['coef'], True)
    """

    #: the text ends with exactly one newline (trailing blank lines removed)
    trailing_newline: bool = False
    css_class: str = "mixmio-summary"

    def __init__(self, blocks: Sequence[str | SummaryTable] | None = None):
        self._given = list(blocks or [])

    def _build(self) -> list[str | SummaryTable]:
        return self._given

    @cached_property
    def blocks(self) -> list[str | SummaryTable]:
        """The lines and tables, in print order (built once)."""
        return list(self._build())

    # tables ----------------------------------------------------------------------------------
    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables as DataFrames of their values, by name, in print order."""
        return {b.name: b.frame for b in self.blocks if isinstance(b, SummaryTable)}

    def __getitem__(self, key: str | int) -> pd.DataFrame:
        tables = self.tables
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return list(tables.values())[key]
        try:
            return tables[cast(str, key)]  # a bool key is no name: KeyError below
        except KeyError:
            raise KeyError(f"no table {key!r} in this summary; tables: {list(tables)}") from None

    def __contains__(self, text: str) -> bool:
        return text in str(self)

    # renderings ------------------------------------------------------------------------------
    def __str__(self) -> str:
        out = []
        for b in self.blocks:
            if isinstance(b, SummaryTable):
                out += [b.title] if b.title is not None else []
                out.append(b.render())
            else:
                out.append(b)
        text = "\n".join(out)
        return text.rstrip() + "\n" if self.trailing_newline else text

    def as_text(self) -> str:
        """The text (``str(self)``)."""
        return str(self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        body = self._render(lambda text: "<pre>" + html.escape(text) + "</pre>",
                            lambda title: f"<p><b>{html.escape(title)}</b></p>", "html", "\n")
        return f"<div class='{self.css_class}'>{body}</div>"

    def as_html(self) -> str:
        """The HTML fragment Jupyter shows (a ``div`` of ``<pre>`` text and tables)."""
        return self._repr_html_()

    def to_markdown(self) -> str:
        """The summary as Markdown: text lines as code blocks, tables as pipe tables."""
        return self._render(lambda text: f"```\n{text}\n```", lambda title: f"**{title}**",
                            "pipe", "\n\n") + "\n"

    def _render(self, text_block, title_line, tablefmt: str, sep: str) -> str:
        """Runs of text lines through ``text_block``, each title line through ``title_line``,
        tables in ``tablefmt``; the parts joined by ``sep``."""
        parts: list[str] = []
        lines: list[str] = []

        def flush():
            if "".join(lines).strip():
                parts.append(text_block("\n".join(lines).strip("\n")))
            lines.clear()

        for b in self.blocks:
            if isinstance(b, SummaryTable):
                flush()
                parts += [title_line(t) for t in _title_lines(b)]
                parts.append(b.render(tablefmt))
            else:
                lines.append(b)
        flush()
        return sep.join(parts)


def _title_lines(t: SummaryTable) -> list[str]:
    return [ln.strip() for ln in (t.title or "").splitlines() if ln.strip()]


def _md_cell(v):
    return v.replace("|", "\\|") if isinstance(v, str) else v


def _width(t: SummaryTable) -> int:
    if t.rows is None:
        return t.frame.shape[1] + (0 if t.options.get("showindex", True) is False else 1)
    return max((len(r) for r in t.rows), default=0)


def key_value_table(name: str, items: Sequence[tuple], per_row: int = 2,
                    options: Mapping | None = None) -> SummaryTable:
    """A header table of ``label: value`` pairs, ``per_row`` pairs to a line.

    ``items``: ``(label, value)`` or ``(label, value, shown)`` (``shown``: the text cell;
    default ``value``).  The frame has one row per item, indexed by the label without its
    colon, with the value in column ``value``.
    """
    cells = [(lab, val, val if len(rest) == 0 else rest[0]) for lab, val, *rest in items]
    rows = [[c for lab, _, shown in cells[i:i + per_row] for c in (lab, shown)]
            for i in range(0, len(cells), per_row)]
    index = pd.Index([lab.rstrip(":") for lab, _, _ in cells], name="item")
    frame = pd.Series([val for _, val, _ in cells], index=index, dtype=object,
                      name="value").to_frame()
    return SummaryTable(name, frame, rows=rows,
                        options=dict(options or {"tablefmt": "plain"}))


def _num(v: float) -> str:
    return f"{v:.4g}"


class LmerSummary(Summary):
    """lme4-style summary of a :class:`~mixmio.results.lmer.MioLmerResult` (a
    :class:`Summary`).

    Tables: ``residuals`` (quantiles of the scaled residuals), ``random`` (lme4's block: per
    random-effect column the variance and SD of the selected deviations; a ``Residual`` row),
    ``selection`` (per column: levels, clusters selected, cap, the largest selected
    deviations), ``bootstrap`` (with a bootstrap attached: the selected clusters'
    bootstrap SE, interval and frequencies) and ``fixed`` (``estimate`` = ``fit.fixef``, plus
    the bootstrap columns).

    Examples
    --------
    >>> import mixmio
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> s = fit.summary()
    >>> str(s).splitlines()[1]
    'Formula: Reaction ~ Days + (1 | Subject)'
    >>> list(s.tables)
    ['residuals', 'random', 'selection', 'fixed']
    >>> bool((s["fixed"]["estimate"] == fit.fixef).all())
    True
    """

    trailing_newline = True

    def __init__(self, fit, n_largest: int = 3):
        super().__init__()
        self.fit = fit
        self.n_largest = n_largest

    # pieces ----------------------------------------------------------------------------------
    def header(self) -> list[str]:
        f = self.fit
        groups = "; ".join(f"{g}: {k} levels" for g, k in f.n_groups.items())
        lines = [
            "Sparse linear mixed model fit by mixed-integer optimization (l0 caps on clusters)",
            f"Formula: {f.formula}",
            f"   Data: {f.n_obs} observations"
            + (f" ({f.design.n_dropped} dropped for missing values)" if f.design.n_dropped else "")
            + f"; {groups}",
            f"Objective (penalised selection): {f.objective:.6g}   ridge: {f.ridge:.3g}"
            + ("   estimates: unpenalised refit on the support" if f.refit else ""),
        ]
        return lines + self.certificate_lines()

    def certificate_lines(self) -> list[str]:
        """The solver line, the attached bootstrap's description and, unless optimal, the
        note that the selection is not proven optimal (shared by the glmer summary)."""
        f = self.fit
        lines = [f"Solver: {f.solver}   status: {f.status}   gap: {_gap(f.gap)}   "
                 f"bound: {f.best_bound:.6g}   time: {f.solve_time:.3g} s"]
        boot = f.bootstrap_result
        if boot is not None and hasattr(boot, "describe"):
            lines += boot.describe().split("\n")
        if f.status != "optimal":
            lines.append(f"NOTE: not proven optimal ({f.status}); the selection is the best found, "
                         f"within a relative gap of {_gap(f.gap)} of the optimum.")
        return lines

    def residual_table(self) -> SummaryTable:
        r = self.fit.residuals / self.fit.sigma
        q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1])
        headers = ["Min", "1Q", "Median", "3Q", "Max"]
        return _table("residuals", pd.DataFrame([q], columns=headers, index=["scaled"]),
                      headers, [[f"{v:.4f}" for v in q]], "Scaled residuals:")

    def _columns(self):
        """(block, column index, label, selected deviations' positions, values) per
        random-effect column."""
        f = self.fit
        p = f.problem.p
        for b in f.design.blocks:
            for j, lab in enumerate(b.labels):
                sl = b.column_slice(j)
                g = f.w[p + sl.start: p + sl.stop]
                yield b, j, lab, np.nonzero(g)[0], g

    def random_table(self) -> SummaryTable:
        """lme4's block: Groups, Name, Variance, Std.Dev. (here the spread of the selected
        deviations, not a variance component: unselected clusters are exactly 0), and the
        residual's."""
        f = self.fit
        rows, values = [], []
        for b, j, _lab, nz, g in self._columns():
            sdv = float(np.std(g[nz], ddof=1)) if len(nz) > 1 else None
            rows.append([b.group, b.columns[j]] + (["", ""] if sdv is None
                                                   else [_num(sdv**2), _num(sdv)]))
            values.append([b.group, b.columns[j]] + ([np.nan, np.nan] if sdv is None
                                                     else [sdv**2, sdv]))
        rows.append(["Residual", "", _num(f.sigma**2), _num(f.sigma)])
        values.append(["Residual", "", f.sigma**2, f.sigma])
        frame = pd.DataFrame(values, columns=["group", "name", "variance", "std_dev"])
        return _table("random", frame, ["Groups", "Name", "Variance", "Std.Dev."], rows,
                      "Random effects (spread of the selected deviations):")

    def selection_table(self) -> SummaryTable:
        """Per random-effect column: levels, clusters selected, the cap, the largest selected
        deviations."""
        f = self.fit
        rows, values = [], []
        for b, j, lab, nz, g in self._columns():
            order = nz[np.argsort(-np.abs(g[nz]))][: self.n_largest]
            largest = ", ".join(f"{b.levels[i]} ({_num(g[i])})" for i in order)
            largest += " ..." if len(nz) > self.n_largest else ""
            sign = next((c for c in f.problem.sign_caps if c.label == lab), None)
            cap = (f"{f.k[lab]} (+{sign.k_pos}/-{sign.k_neg})" if sign is not None
                   else f.k[lab])
            rows.append([b.group, b.columns[j], b.n_levels, len(nz), cap, largest])
            values.append([b.group, b.columns[j], b.n_levels, len(nz), cap, largest])
        frame = pd.DataFrame(values, columns=["group", "name", "levels", "selected", "cap",
                                              "largest"])
        frame = frame.astype({"levels": "Int64", "selected": "Int64"})
        return _table("selection", frame, ["Groups", "Name", "Levels", "Selected", "Cap",
                                           "Largest selected (estimate)"], rows,
                      "Cluster selection (l0 caps):")

    def fixed_table(self) -> SummaryTable:
        f = self.fit
        # lme4's columns; the standard errors are conditional on the selected clusters
        headers = ["", "Estimate", "Std. Error", "t value"]
        boot = getattr(f.bootstrap_result, "fixef_table", None)
        extra = boot() if callable(boot) else None
        ft = f.fixef_table
        frame = pd.DataFrame({"estimate": f.fixef, "std_error": ft["std_error"],
                              "t_value": ft["t_value"]})
        if extra is not None:
            headers += list(extra.columns)
            frame = frame.join(extra)
        rows = []
        for name, est in f.fixef.items():
            row = [name, _num(est), _num(ft.loc[name, "std_error"]),
                   f"{ft.loc[name, 't_value']:.2f}"]
            if extra is not None:
                row += [_num(v) if isinstance(v, float) else v for v in extra.loc[name]]
            rows.append(row)
        title = (f"Number of obs: {f.n_obs}, groups: "
                 + ", ".join(f"{g}, {k}" for g, k in f.n_groups.items())
                 + "\n\nFixed effects (Std. Error and t value conditional on the selected "
                   "clusters):")
        return _table("fixed", frame, headers, rows, title)

    def bootstrap_random_table(self) -> SummaryTable | None:
        """Bootstrap SE, interval and selection frequency of the selected clusters."""
        boot = self.fit.bootstrap_result
        table = getattr(boot, "ranef_table", None)
        if not callable(table):
            return None
        t = table(selected_only=True)
        lo, hi = boot.interval_labels
        cols = ["group", "term", "level", "estimate", "se", "lower", "upper",
                "selection_frequency", "sign_stability"]
        rows = [[r.group, r.term, r.level, _num(r.estimate), _num(r.se), _num(r.lower),
                 _num(r.upper), _num(r.selection_frequency), _num(r.sign_stability)]
                for r in t.itertuples(index=False)]
        return _table("bootstrap", t[cols].reset_index(drop=True),
                      ["Groups", "Name", "Level", "Estimate", "Boot.SE", lo, hi, "Sel.freq",
                       "Sign.stab"], rows, "Selected clusters (bootstrap):")

    def _build(self) -> list:
        out: list = [*self.header(), ""]
        for t in (self.residual_table(), self.random_table(), self.selection_table(),
                  self.bootstrap_random_table(), self.fixed_table()):
            if t is not None:
                out += [t, ""]
        return out


def _table(name: str, frame: pd.DataFrame, headers: list, rows: list, title: str
           ) -> SummaryTable:
    """An lme4-style table: text cells as given, numeric columns right-aligned."""
    return SummaryTable(name, frame, rows=rows, headers=headers, title=title,
                        options={"disable_numparse": True,
                                 "colalign": _align(rows, len(headers))})


def _align(rows: list, width: int) -> list[str]:
    """Right-align columns whose non-empty cells are all numbers."""
    def numeric(v) -> bool:
        try:
            float(str(v))
            return True
        except ValueError:
            return False

    cols = []
    for j in range(width):
        cells = [r[j] for r in rows if j < len(r) and str(r[j]) != ""]
        cols.append("right" if cells and all(numeric(c) for c in cells) else "left")
    return cols


def _gap(g: float) -> str:
    return "inf" if not np.isfinite(g) else f"{100 * g:.3g}%"
