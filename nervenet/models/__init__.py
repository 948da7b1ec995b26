"""Models: ``Model`` (functional API and subclassing), ``Sequential``, ``load_model``,
``clone_model``, ``fold_batch_norm``, ``predict_tta``."""

from nervenet.models.cloning import clone_model
from nervenet.models.folding import fold_batch_norm
from nervenet.models.model import Model
from nervenet.models.sequential import Sequential
from nervenet.models.tta import five_crops, predict_tta
from nervenet.saving import load_model

__all__ = ["Model", "Sequential", "clone_model", "five_crops", "fold_batch_norm", "load_model",
           "predict_tta"]
