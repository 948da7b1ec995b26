"""Models: ``Model`` (functional API and subclassing), ``Sequential``, ``load_model``,
``clone_model``."""

from nervenet.models.cloning import clone_model
from nervenet.models.model import Model
from nervenet.models.sequential import Sequential
from nervenet.saving import load_model

__all__ = ["Model", "Sequential", "clone_model", "load_model"]
