"""Holistic regression's constraints (King 2015, ch. 3): the constraint objects
(:mod:`~mixmio.problem.holistic.constraints`) and their compilation into linear rows on the
selection indicators (:mod:`~mixmio.problem.holistic.compile`).

>>> import mixmio
>>> mixmio.CorrelationLimit(0.7), mixmio.ForceInclude(["x1"])
(CorrelationLimit(rho=0.7), ForceInclude(['x1']))
"""
