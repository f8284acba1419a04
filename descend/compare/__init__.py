"""``descend compare``: optimizers raced on 2-D test functions and on a network, with their figures."""
from .race import FunctionRace, Trajectory, compare_on_function

__all__ = ["FunctionRace", "Trajectory", "compare_on_function"]
