"""Functions with hand-written backward passes, re-exported from their families (``F.linear``, ``F.conv2d``, …).

Families: ``dense`` (linear, activations, softmax, dropout), ``losses``, ``normalization`` (batch norm),
``conv`` (convolution and the size rules) and ``pooling``; beside them the Numba kernels each loads
on first use; the pool of recycled large arrays is ``descend.common.scratch``.
"""
from .conv import conv1d, conv2d, conv_output_shape, conv_output_size
from .dense import (dropout, elu, leaky_relu, linear, linear_relu, log_softmax, maxout, relu, sigmoid, softmax,
                    tanh)
from .losses import bce_with_logits, check_labels, cross_entropy, hinge, l2_penalty, mse
from .normalization import batch_norm
from .pooling import avg_pool1d, avg_pool2d, global_avg_pool, max_pool1d, max_pool2d

__all__ = [
    "linear", "linear_relu", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout", "softmax", "log_softmax",
    "dropout", "cross_entropy", "mse", "bce_with_logits", "hinge", "l2_penalty", "check_labels", "batch_norm",
    "conv_output_size", "conv_output_shape", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d",
    "avg_pool2d", "global_avg_pool",
]
