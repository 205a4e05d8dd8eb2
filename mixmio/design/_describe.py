"""Plain-text description of a Design (the main job until a fit exists)."""

from __future__ import annotations

import numpy as np
from tabulate import tabulate


def describe(design) -> str:
    n, p = design.X.shape
    lines = [
        f"Design for: {design.formula}",
        f"Observations: {n}" + (f" ({design.n_dropped} dropped for missing values: "
                                f"{design.na_counts})" if design.n_dropped else ""),
        f"Response: {design.spec.response}  (mean {np.mean(design.y):.4g}, "
        f"sd {np.std(design.y, ddof=1) if n > 1 else 0.0:.4g})",
        f"Fixed effects ({p}): {', '.join(map(str, design.X.columns))}",
    ]
    if design.spec.offsets:
        lines.append(f"Offset: {' + '.join(design.spec.offsets)}")
    rows = []
    for b in design.blocks:
        sizes = b.cluster_sizes()
        rows.append([b.group, ", ".join(b.labels), b.n_levels, b.q * b.n_levels,
                     f"{sizes.min()}/{np.median(sizes):g}/{sizes.max()}"])
    if rows:
        lines.append("Random effects:")
        lines.append(tabulate(rows, headers=["Groups", "Columns (cap keys)", "Levels",
                                             "Z columns", "Rows per level min/med/max"]))
    lines.append(f"Z: {design.Z.shape[0]} x {design.Z.shape[1]} sparse, {design.Z.nnz} non-zeros")
    return "\n".join(lines)
