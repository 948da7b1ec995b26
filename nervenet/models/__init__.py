"""Models: ``Model`` (subclassing), ``Sequential``."""

from nervenet.models.model import Model
from nervenet.models.sequential import Sequential

__all__ = ["Model", "Sequential"]
