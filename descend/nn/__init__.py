"""Neural-network building blocks: fused functions, layers, initializers, losses and the packed θ."""
from . import functional, init
from .conv_layers import AvgPool1d, AvgPool2d, Conv1d, Conv2d, GlobalAvgPool, MaxPool1d, MaxPool2d
from .functional import (avg_pool1d, avg_pool2d, bce_with_logits, conv1d, conv2d, conv_output_shape,
                         conv_output_size, cross_entropy, global_avg_pool, hinge, l2_penalty, max_pool1d, max_pool2d,
                         mse)
from .layers import ELU, Dropout, Flatten, LeakyReLU, Linear, Maxout, Module, ReLU, Sequential, Sigmoid, Tanh
from .norm_layers import BatchNorm1d, BatchNorm2d
from .params import Entry, Params, pack
from .summary import summary

__all__ = ["functional", "init", "Module", "Sequential", "Linear", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh",
           "Maxout", "Dropout", "BatchNorm1d", "Flatten", "cross_entropy", "mse", "bce_with_logits", "hinge",
           "l2_penalty", "Entry", "Params", "pack",
           "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "global_avg_pool",
           "conv_output_size", "conv_output_shape", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d",
           "AvgPool2d", "GlobalAvgPool", "BatchNorm2d", "summary"]
