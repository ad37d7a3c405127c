"""Training: a model-agnostic Trainer, engines (PyTorch, NumPy), checkpoints, torchrun.

from attnlab.train import Trainer, TrainConfig, TorchEngine
"""

from attnlab.train.engine import Engine, TorchEngine, decay_groups
from attnlab.train.trainer import BatchSource, TrainConfig, Trainer, TrainingInterrupted, read_metrics

__all__ = [
    "Engine",
    "TorchEngine",
    "decay_groups",
    "BatchSource",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "read_metrics",
]
