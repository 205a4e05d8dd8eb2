"""Predictions back on the caller's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd


def on_newdata(pred: np.ndarray, nd, newdata: pd.DataFrame) -> pd.Series:
    """Predictions of the complete rows of ``newdata`` (``nd`` = ``design.transform(newdata)``)
    as a Series on its index, NaN for the rows the design skipped for missing values."""
    out = np.full(len(newdata), np.nan)
    out[nd.complete if nd.complete is not None else slice(None)] = pred
    return pd.Series(out, index=newdata.index, name="prediction")
