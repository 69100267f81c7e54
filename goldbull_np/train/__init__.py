"""Training, for every model family: Trainer, Task, callbacks, the one TrainingConfig, checkpoints, metrics.

    from goldbull_np.train import Trainer, TrainingConfig, MetricsLogger, EarlyStopping

    trainer = Trainer(model, TrainingConfig(learning_rate=3e-4, batch_size=8, num_epochs=2),
                      task=my_task, callbacks=[MetricsLogger("runs/logs")])
    trainer.train(train_dataset, val_dataset)
"""
from ..optim.step import NonFiniteLossError
from .callbacks import Callback, CallbackList, EarlyStopping, PrintLogger, ProgressBar
from .checkpoint import CheckpointInfo, CheckpointManager, load_checkpoint, read_trainer_state, resolve_checkpoint
from .config import CheckpointConfig, ConfigError, OptimizerConfig, TrainingConfig, read_config_file
from .interrupt import TrainingInterrupted
from .metrics import MetricsLogger, TrainingMetrics, ValidationMetrics
from .task import Task, WeightedLossTask
from .trainer import ResumeMismatchError, Trainable, Trainer, TrainerState

__all__ = ["Trainer", "Trainable", "TrainingConfig", "Task", "WeightedLossTask", "Callback", "CallbackList",
           "ProgressBar", "EarlyStopping", "PrintLogger", "ValidationMetrics", "TrainingMetrics", "MetricsLogger",
           "CheckpointManager", "CheckpointConfig", "CheckpointInfo", "OptimizerConfig", "ConfigError",
           "NonFiniteLossError", "ResumeMismatchError", "TrainerState", "load_checkpoint", "read_trainer_state",
           "resolve_checkpoint", "read_config_file", "TrainingInterrupted"]
