"""The training loop and what it is made of: history, stopping rules, callbacks, checkpoints."""
from .callbacks import Averaging, MetricsLog, ProgressBar, ReduceLROnPlateau
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .evaluate import evaluate, predict
from .loop import SNAPSHOT_EVERY, fit
from .objective import Objective
from .state import FitState, Snapshot
from .model_io import load, load_model
from .predictor import Predictor
from .stopping import (AnyOf, Divergence, EarlyStopping, MaxEpochs, MaxSteps, SmallLossChange, SmallParamChange,
                       TimeLimit)

__all__ = ["fit", "evaluate", "predict", "Objective", "FitState", "Snapshot", "SNAPSHOT_EVERY", "History", "MaxSteps", "MaxEpochs", "SmallParamChange",
           "SmallLossChange", "EarlyStopping", "Divergence", "TimeLimit", "AnyOf", "ProgressBar",
           "ReduceLROnPlateau", "MetricsLog", "Averaging", "save_checkpoint", "load_checkpoint", "load_model", "load",
           "Predictor"]
