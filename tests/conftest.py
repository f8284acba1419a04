"""Shared fixtures of the test suite."""
import os

import numpy as np
import pytest

# scikit-learn's estimator check `check_array_api_input` (tests/test_sklearn.py) runs only when SciPy's
# array-API mode is on, which must be set before SciPy is first imported; otherwise it skips.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test is reproducible on its own."""
    return np.random.default_rng(1234)
