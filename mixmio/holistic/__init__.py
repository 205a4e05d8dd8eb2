"""Holistic regression (King 2015, ch. 3): constraint objects, their compilation into linear
rows on the selection indicators, and King's pipeline :func:`holistic_regression`.

>>> import mixmio
>>> mixmio.CorrelationLimit(0.7), mixmio.ForceInclude(["x1"])
(CorrelationLimit(rho=0.7), ForceInclude(['x1']))
"""

from .constraints import (
    Constraint,
    CorrelationLimit,
    Exclude,
    ForceInclude,
    GroupSparsity,
    JointClusterSelection,
    Robust,
    Significance,
    Transforms,
    robust_grid,
)

__all__ = ["Constraint", "CorrelationLimit", "Exclude", "ForceInclude", "GroupSparsity",
           "JointClusterSelection", "Robust", "Significance", "Transforms", "robust_grid",
           "holistic_regression", "HolisticResult"]


def __getattr__(name):
    if name in ("holistic_regression", "HolisticResult"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
