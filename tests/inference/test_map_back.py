"""A cluster drawn twice by the cluster bootstrap: which copy an optimum selects is an exact tie,
and the mapped estimates must not depend on it (issue 14)."""

import numpy as np

from mixmio.inference._tasks import map_back


def test_duplicate_copies_map_back_the_same_whichever_is_selected():
    colmap = np.array([0, 2, 2, 1, 1, 3])  # clusters 2 and 1 drawn twice, 4 absent
    a = np.array([0.5, 1.5, 0.0, 0.0, -2.0, 0.0])  # the solver picked copy 1 of 2, copy 2 of 1
    b = np.array([0.5, 0.0, 1.5, -2.0, 0.0, 0.0])  # the other tied optimum
    ma, mb = map_back(a, colmap, 5), map_back(b, colmap, 5)
    np.testing.assert_array_equal(ma, mb)
    np.testing.assert_array_equal(ma, [0.5, -2.0, 1.5, 0.0, np.nan])


def test_no_duplicates_is_the_identity_placement():
    colmap = np.array([3, 0, 1])
    w = np.array([1.0, 0.0, -1.0])
    np.testing.assert_array_equal(map_back(w, colmap, 4), [0.0, -1.0, np.nan, 1.0])
    np.testing.assert_array_equal(map_back(w, None, 3), w)
