"""Data: shipped datasets (``nervenet.data.datasets``)."""

from nervenet.data import datasets

__all__ = ["datasets"]
