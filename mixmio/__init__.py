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

# registers the fits' inference methods (fit.bootstrap(), fit.stability(), the plots), which the
# result classes look up in mixmio.results._methods instead of importing upward
from mixmio import (
    datasets,
    inference,  # noqa: F401
)
from mixmio.api.clr import mio_clr
from mixmio.api.cv import cv_lmer
from mixmio.api.glm import mio_glm
from mixmio.api.glmer import mio_glmer
from mixmio.api.glmer_tuning import cv_glmer, glmer_path
from mixmio.api.holistic import holistic_regression
from mixmio.api.lm import mio_lm
from mixmio.api.lmer import mio_lmer
from mixmio.api.path import lmer_path
from mixmio.design import Design, RankDeficientError, build_design
from mixmio.errors import MixmioError
from mixmio.formula import FormulaError, FormulaSpec, RandomTerm, parse_formula
from mixmio.problem.holistic.constraints import (
    CorrelationLimit,
    Exclude,
    ForceInclude,
    GroupSparsity,
    JointClusterSelection,
    Robust,
    Significance,
    Transforms,
)
from mixmio.results.clr import MioClrResult
from mixmio.results.cv import CVResult
from mixmio.results.glm import MioGlmResult
from mixmio.results.glmer import MioGlmerResult
from mixmio.results.holistic import HolisticResult
from mixmio.results.path import PathResult
from mixmio.simulate import SimulatedData, simulate

__version__ = "0.1.0"


def __getattr__(name: str):
    # scikit-learn costs ~0.4 s to import: load the estimator only when asked for
    if name == "MioLmerRegressor":
        from mixmio.sklearn import MioLmerRegressor

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
