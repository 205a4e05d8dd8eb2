"""The front doors: each checks its arguments, builds the design and the problem, solves, and
packages the result with the result class's ``from_solution`` (``lmer``: :func:`mio_lmer`;
``lm``: :func:`mio_lm`; ``glm``, ``glmer``, ``clr``; ``path``, ``cv`` and ``glmer_tuning`` for
choosing the caps; ``holistic`` for King's pipeline).  ``_lmer`` and ``_glmer`` hold the stages
of one mio_lmer / mio_glmer fit that the paths and cross-validations share.  The result
classes live in :mod:`mixmio.results`, the inference on a fit in :mod:`mixmio.inference`.
The package re-exports nothing: import the names from :mod:`mixmio`.
"""
