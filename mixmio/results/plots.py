"""Drawing helpers shared by the plots of the results and of the inference stage."""

from __future__ import annotations


def new_axes(ax, height: float):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.4, max(2.5, min(height, 40.0))), layout="constrained")
    return fig, fig.add_subplot()
