"""Solver objects that print nothing to stdout.

HiGHS prints its banner to file descriptor 1 when the first ``Highs`` object of a process is
constructed, before any option can be set; Gurobi prints its licence line when an
environment starts.  :func:`highs` builds the first ``Highs`` with descriptor 1 pointed at
``/dev/null`` (then silences it through ``output_flag``); :func:`gurobi_env` starts one
environment with ``OutputFlag = 0`` and reuses it.
"""

from __future__ import annotations

import os
import sys
import threading

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
