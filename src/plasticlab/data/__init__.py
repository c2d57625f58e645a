"""Data sets: embedded (digits, synthetic) and downloadable image sets (MNIST, CIFAR-10, ...)."""

from . import synthetic
from .base import (DataError, Dataset, TestSplitRead, available_datasets, default_data_dir, load_dataset,
                   register_dataset, search_context)
from .synthetic import load_digits, teacher_student

try:  # the downloadable image loaders
    from . import images  # noqa: F401
except ImportError as _err:  # pragma: no cover - only while the module is being written
    if "images" not in str(_err):
        raise

__all__ = ["DataError", "Dataset", "TestSplitRead", "search_context", "available_datasets", "default_data_dir", "load_dataset", "register_dataset",
           "load_digits", "teacher_student"]
