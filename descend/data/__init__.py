"""Data: validation of (X, y), mini-batching, train/validation split, embedded datasets (no downloads),
preprocessing fitted on training data, image augmentation."""
from .augment import Compose, GaussianNoise, HorizontalFlip, RandomCrop, Translate
from .batching import RowView, batch_slices, epoch_order, resolve_batch_size, take
from .datasets import (Dataset, load_breast_cancer, load_digits, load_iris, load_mnist1d, load_wine,
                       make_spiral)
from .preprocess import PCA, Center, PCAWhiten, Pipeline, Standardize, ZCAWhiten
from .split import train_val_split
from .validate import check_Xy, num_classes

__all__ = ["check_Xy", "num_classes", "take", "resolve_batch_size", "epoch_order", "batch_slices",
           "train_val_split", "RowView", "Dataset", "load_digits", "load_iris", "load_wine",
           "load_breast_cancer", "load_mnist1d", "make_spiral",
           "Center", "Standardize", "PCA", "PCAWhiten", "ZCAWhiten", "Pipeline",
           "RandomCrop", "HorizontalFlip", "Translate", "GaussianNoise", "Compose"]
