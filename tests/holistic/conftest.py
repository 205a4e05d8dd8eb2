import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def small_df():
    """n=60: six numeric columns (b2 nearly a copy of b), a 3-level factor, a positive x."""
    rng = np.random.default_rng(7)
    n = 60
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=list("abcde"))
    df["b2"] = df.b + 0.15 * rng.normal(size=n)
    df["f"] = rng.choice(list("pqr"), n)
    df["pos"] = rng.random(n) * 3
    df.loc[:2, "pos"] = 0.0
    df["y"] = (df.a + df.b - df.c + (df.f == "q") * 1.5 + np.log(df.pos + 0.1)
               + rng.normal(size=n))
    return df


FORMULA = "y ~ a + b + c + d + e + b2 + f + pos"
