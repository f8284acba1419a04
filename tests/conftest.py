"""Shared fixtures of the test suite."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test is reproducible on its own."""
    return np.random.default_rng(1234)
