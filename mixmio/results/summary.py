"""lme4-style summary of a MioLmerResult, rendered with tabulate (text and HTML)."""

from __future__ import annotations

import html

import numpy as np
from tabulate import tabulate


def _num(v: float) -> str:
    return f"{v:.4g}"


class LmerSummary:
    """``str()`` gives the text table; Jupyter shows ``_repr_html_``."""

    def __init__(self, fit, n_largest: int = 3):
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
            f"Solver: {f.solver}   status: {f.status}   gap: {_gap(f.gap)}   "
            f"bound: {f.best_bound:.6g}   time: {f.solve_time:.3g} s",
        ]
        boot = f.bootstrap_result
        if boot is not None and hasattr(boot, "describe"):
            lines += boot.describe().split("\n")
        if f.status != "optimal":
            lines.append(f"NOTE: not proven optimal ({f.status}); the selection is the best found, "
                         f"within a relative gap of {_gap(f.gap)} of the optimum.")
        return lines

    def residual_table(self) -> tuple[list, list]:
        r = self.fit.residuals / self.fit.sigma
        q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1])
        return ["Min", "1Q", "Median", "3Q", "Max"], [[f"{v:.4f}" for v in q]]

    def random_table(self) -> tuple[list, list]:
        f = self.fit
        p = f.problem.p
        rows = []
        for b in f.design.blocks:
            for j, lab in enumerate(b.labels):
                sl = b.column_slice(j)
                g = f.w[p + sl.start: p + sl.stop]
                nz = np.nonzero(g)[0]
                order = nz[np.argsort(-np.abs(g[nz]))][: self.n_largest]
                largest = ", ".join(f"{b.levels[i]} ({_num(g[i])})" for i in order)
                sdv = float(np.std(g[nz], ddof=1)) if len(nz) > 1 else None
                var, sd = ("", "") if sdv is None else (_num(sdv**2), _num(sdv))
                sign = next((c for c in f.problem.sign_caps if c.label == lab), None)
                cap = (f"{f.k[lab]} (+{sign.k_pos}/-{sign.k_neg})" if sign is not None
                       else f.k[lab])
                rows.append([b.group, b.columns[j], b.n_levels, len(nz), cap, var, sd,
                             largest + (" ..." if len(nz) > self.n_largest else "")])
        rows.append(["Residual", "", "", "", "", _num(f.sigma**2), _num(f.sigma), ""])
        # lme4's "Name", "Variance", "Std.Dev."; here the spread of the selected deviations
        # (not a variance component: unselected clusters are exactly 0)
        return ["Groups", "Name", "Levels", "Selected", "Cap", "Variance(selected)",
                "Std.Dev.(selected)", "Largest selected (level (estimate))"], rows

    def fixed_table(self) -> tuple[list, list]:
        f = self.fit
        headers = ["", "Estimate"]
        boot = getattr(f.bootstrap_result, "fixef_table", None)
        extra = boot() if callable(boot) else None
        if extra is not None:
            headers += list(extra.columns)
        rows = []
        for name, est in f.fixef.items():
            row = [name, _num(est)]
            if extra is not None:
                row += [_num(v) if isinstance(v, float) else v for v in extra.loc[name]]
            rows.append(row)
        return headers, rows

    def bootstrap_random_table(self) -> tuple[list, list] | None:
        """Bootstrap SE, interval and selection frequency of the selected clusters."""
        boot = self.fit.bootstrap_result
        table = getattr(boot, "ranef_table", None)
        if not callable(table):
            return None
        t = table(selected_only=True)
        lo, hi = boot.interval_labels
        rows = [[r.group, r.term, r.level, _num(r.estimate), _num(r.se), _num(r.lower),
                 _num(r.upper), _num(r.selection_frequency), _num(r.sign_stability)]
                for r in t.itertuples(index=False)]
        return ["Groups", "Name", "Level", "Estimate", "Boot.SE", lo, hi, "Sel.freq",
                "Sign.stab"], rows

    # renderings ------------------------------------------------------------------------------
    def sections(self):
        f = self.fit
        boot_rand = self.bootstrap_random_table()
        return [
            ("Scaled residuals:", *self.residual_table()),
            ("Random effects:", *self.random_table()),
            *([("Selected clusters (bootstrap):", *boot_rand)] if boot_rand else []),
            (f"Number of obs: {f.n_obs}, groups: "
             + ", ".join(f"{g}, {k}" for g, k in f.n_groups.items()) + "\n\nFixed effects:",
             *self.fixed_table()),
        ]

    def __str__(self) -> str:
        out = self.header() + [""]
        for title, headers, rows in self.sections():
            out += [title, tabulate(rows, headers=headers, disable_numparse=True,
                                    colalign=_align(rows, len(headers))), ""]
        return "\n".join(out).rstrip() + "\n"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = ["<div class='mixmio-summary'><pre>" + html.escape("\n".join(self.header()))
                 + "</pre>"]
        for title, headers, rows in self.sections():
            parts.append(f"<p><b>{html.escape(title)}</b></p>")
            parts.append(tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True))
        return "\n".join(parts) + "</div>"


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
