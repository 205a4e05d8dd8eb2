"""mixmio: sparse mixed models fitted by mixed-integer optimization.

>>> import mixmio
>>> data = mixmio.datasets.load("sleepstudy")
>>> design = mixmio.build_design("Reaction ~ Days + (1 | Subject)", data)
>>> design.Z.shape
(180, 18)
>>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
>>> fit.status
'optimal'
"""

from . import datasets
from .api import mio_lm, mio_lmer
from .clr import MioClrResult, mio_clr
from .design import Design, RankDeficientError, build_design
from .errors import MixmioError
from .formula import FormulaError, FormulaSpec, RandomTerm, parse_formula
from .glm import MioGlmResult, mio_glm
from .glmer import MioGlmerResult, cv_glmer, glmer_path, mio_glmer
from .holistic import (
    CorrelationLimit,
    Exclude,
    ForceInclude,
    GroupSparsity,
    JointClusterSelection,
    Robust,
    Significance,
    Transforms,
)
from .holistic.pipeline import HolisticResult, holistic_regression
from .simulate import SimulatedData, simulate
from .tuning import CVResult, PathResult, cv_lmer, lmer_path

__version__ = "0.1.0"


def __getattr__(name: str):
    # scikit-learn costs ~0.4 s to import: load the estimator only when asked for
    if name == "MioLmerRegressor":
        from .sklearn import MioLmerRegressor

        return MioLmerRegressor
    raise AttributeError(f"module 'mixmio' has no attribute {name!r}")

__all__ = [
    "CVResult",
    "MioLmerRegressor",
    "PathResult",
    "cv_lmer",
    "lmer_path",
    "CorrelationLimit",
    "Exclude",
    "ForceInclude",
    "GroupSparsity",
    "HolisticResult",
    "JointClusterSelection",
    "Robust",
    "Significance",
    "Transforms",
    "holistic_regression",
    "mio_lm",
    "Design",
    "FormulaError",
    "MixmioError",
    "FormulaSpec",
    "RandomTerm",
    "RankDeficientError",
    "build_design",
    "datasets",
    "mio_lmer",
    "parse_formula",
    "MioClrResult",
    "MioGlmResult",
    "SimulatedData",
    "mio_clr",
    "mio_glm",
    "mio_glmer",
    "glmer_path",
    "cv_glmer",
    "MioGlmerResult",
    "simulate",
]
