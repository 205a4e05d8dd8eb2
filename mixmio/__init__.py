"""mixmio: sparse mixed models fitted by mixed-integer optimization.

>>> import mixmio
>>> design = mixmio.build_design("Reaction ~ Days + (1 | Subject)", mixmio.datasets.load("sleepstudy"))
>>> design.Z.shape
(180, 18)
"""

from . import datasets
from .design import Design, RankDeficientError, build_design
from .formula import FormulaError, FormulaSpec, RandomTerm, parse_formula

__version__ = "0.1.0"

__all__ = [
    "Design",
    "FormulaError",
    "FormulaSpec",
    "RandomTerm",
    "RankDeficientError",
    "build_design",
    "datasets",
    "parse_formula",
]
