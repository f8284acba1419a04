"""Neural-network building blocks: fused functions, layers, initializers, losses and the packed θ."""
from . import functional, init
from .layers import (ELU, BatchNorm1d, Dropout, Flatten, LeakyReLU, Linear, Maxout, Module, ReLU, Sequential,
                     Sigmoid, Tanh)
from .losses import bce_with_logits, cross_entropy, hinge, l2_penalty, mse
from .params import Entry, Params, pack
from .conv import (avg_pool1d, avg_pool2d, conv1d, conv2d, conv_output_shape, conv_output_size, global_avg_pool,
                   max_pool1d, max_pool2d)
from .conv_layers import AvgPool1d, AvgPool2d, BatchNorm2d, Conv1d, Conv2d, GlobalAvgPool, MaxPool1d, MaxPool2d
from .summary import summary

__all__ = ["functional", "init", "Module", "Sequential", "Linear", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh",
           "Maxout", "Dropout", "BatchNorm1d", "Flatten", "cross_entropy", "mse", "bce_with_logits", "hinge",
           "l2_penalty", "Entry", "Params", "pack",
           "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "global_avg_pool",
           "conv_output_size", "conv_output_shape", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d",
           "AvgPool2d", "GlobalAvgPool", "BatchNorm2d", "summary"]
