"""The front doors: each checks its arguments, builds the design and the problem, solves, and
packages the result (``lmer``: :func:`mio_lmer` and :func:`mio_lm`; ``glm``, ``glmer``, ``clr``;
``path``, ``cv`` and ``glmer_tuning`` for choosing the caps; ``holistic`` for King's pipeline).
The package re-exports nothing: import the names from :mod:`mixmio`.
"""
