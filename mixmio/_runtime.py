"""Process-level plumbing every layer may use: warnings that point at the user's line, the
``mixmio`` logger, and solver objects that print nothing to stdout.

- :func:`user_stacklevel`: ``stacklevel`` for ``warnings.warn`` so a warning names the
  user's call, not mixmio's internals.
- :data:`logger` and :func:`verbose_logging`: progress goes to the ``mixmio`` logger
  (``logging.getLogger("mixmio")``; configure it as any library logger); ``verbose=True``
  on a front door attaches a stderr handler at INFO for the duration of the call.
- :func:`require`: import an optional dependency, or raise
  :class:`~mixmio.errors.MissingDependencyError` naming the extra that installs it.
- :func:`highs` / :func:`gurobi_env`: HiGHS prints its banner to file descriptor 1 when the
  first ``Highs`` object of a process is constructed, before any option can be set; Gurobi
  prints its licence line when an environment starts.  :func:`highs` builds the first
  ``Highs`` with descriptor 1 pointed at ``/dev/null`` (then silences it through
  ``output_flag``); :func:`gurobi_env` starts one environment with ``OutputFlag = 0`` and
  reuses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from types import FrameType

_PKG = os.path.dirname(os.path.abspath(__file__))

#: optional dependency -> the extra that installs it (pyproject's [project.optional-dependencies])
EXTRAS = {"cvxpy": "scip", "pyscipopt": "scip", "gurobipy": "gurobi", "sklearn": "sklearn",
          "dask": "dask", "distributed": "dask"}


def require(module: str, what: str):
    """Import the optional dependency ``module`` for ``what`` (a phrase naming the feature), or
    raise :class:`~mixmio.errors.MissingDependencyError` with the ``pip install`` command.

    >>> require("numpy", "arrays").__name__
    'numpy'
    >>> require("no_such_module_here", "a test")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mixmio.errors.MissingDependencyError: a test needs no_such_module_here, ...
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        from mixmio.errors import MissingDependencyError

        extra = EXTRAS.get(module.split(".")[0])
        how = (f"pip install 'mixmio[{extra}]'" if extra
               else f"pip install {module.split('.')[0]}")
        raise MissingDependencyError(
            f"{what} needs {module}, which is not installed: {how}") from None

#: the package's logger: progress lines of long searches (INFO), nothing by default
logger = logging.getLogger("mixmio")
logger.addHandler(logging.NullHandler())


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` called right after this: the first frame outside
    the mixmio package (the user's call), however deep the internal call chain is."""
    # the function that will call warnings.warn: stacklevel 1
    f: FrameType | None = sys._getframe(1)
    level = 1
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG + os.sep):
        f = f.f_back
        level += 1
    return level


@contextlib.contextmanager
def verbose_logging(verbose: bool) -> Iterator[None]:
    """With ``verbose``, show the ``mixmio`` logger's INFO lines on stderr while the block
    runs (a handler is attached and removed again); without it, change nothing.

    >>> import logging
    >>> with verbose_logging(True):
    ...     logging.getLogger("mixmio").getEffectiveLevel() <= logging.INFO
    True
    """
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


_LOCK = threading.Lock()
_HIGHS_FIRST = True
_GUROBI_ENV = None


def highs():
    """A silent ``highspy.Highs()``."""
    global _HIGHS_FIRST
    import highspy

    with _LOCK:
        if _HIGHS_FIRST:
            try:
                sys.stdout.flush()
                saved = os.dup(1)
            except (OSError, ValueError):  # no real descriptor 1 (an embedded interpreter)
                saved = None
            try:
                if saved is not None:
                    with open(os.devnull, "w") as null:
                        os.dup2(null.fileno(), 1)
                h = highspy.Highs()
            finally:
                if saved is not None:
                    os.dup2(saved, 1)
                    os.close(saved)
            _HIGHS_FIRST = False
        else:
            h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def gurobi_env():
    """A started Gurobi environment with ``OutputFlag = 0`` (created once, reused)."""
    global _GUROBI_ENV
    import gurobipy as gp

    with _LOCK:
        if _GUROBI_ENV is None:
            env = gp.Env(empty=True)
            env.setParam("OutputFlag", 0)
            env.start()
            _GUROBI_ENV = env
    return _GUROBI_ENV
