"""Diagnostics: the gradient check, and (later) the babysitting checks."""
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient

__all__ = ["numerical_gradient", "gradcheck", "GradcheckResult"]
