"""descend: train neural networks on NumPy — every step of the classic courses, exact, visible, fast on a CPU."""
from . import autodiff, data, diagnose, nn, optim, train
from .autodiff import Parameter, Tensor, no_grad, tensor
from .nn import Params, pack, summary
from .train import Predictor, evaluate, fit, load, load_model, predict

__version__ = "0.1.0"
__all__ = ["autodiff", "nn", "optim", "data", "train", "diagnose", "Tensor", "Parameter",
           "tensor", "no_grad", "pack", "Params", "summary", "fit", "evaluate", "predict", "load_model",
           "load", "Predictor"]
