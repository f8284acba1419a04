"""Diagnostics: the gradient check and the babysitting checks (initial loss, overfit a subset, LR range test,
activation and update statistics, loss-curve and gap verdicts), combined by ``doctor``."""
from .activations import ActivationReport, LayerActivations, activation_stats, trace
from .checks import (GapResult, InitialLossResult, LossCurveResult, OverfitResult, gap_verdict, initial_loss_check,
                     loss_curve_verdict, overfit_small_subset)
from .doctor import FAULTS, Report, doctor
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient
from .lr_range import LRRangeResult, lr_range_test
from .updates import LayerUpdate, UpdateReport, update_ratios

__all__ = ["numerical_gradient", "gradcheck", "GradcheckResult",
           "initial_loss_check", "InitialLossResult", "overfit_small_subset", "OverfitResult",
           "loss_curve_verdict", "LossCurveResult", "gap_verdict", "GapResult",
           "activation_stats", "trace", "ActivationReport", "LayerActivations",
           "update_ratios", "UpdateReport", "LayerUpdate", "lr_range_test", "LRRangeResult",
           "doctor", "Report", "FAULTS"]
