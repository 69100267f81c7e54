"""Training: Trainer, configs, checkpoints, metrics and loggers.

    from goldbull_np.train import Trainer, TrainingConfig, CheckpointManager, CheckpointConfig, MetricsLogger

    trainer = Trainer(model, TrainingConfig(learning_rate=3e-4, batch_size=8, num_epochs=2))
    trainer.add_logger(MetricsLogger("runs/logs"))
    trainer.set_checkpoint_manager(CheckpointManager("runs/ckpt", CheckpointConfig(max_checkpoints=3)))
    trainer.train(train_dataset, val_dataset)
"""
from .checkpoint import CheckpointInfo, CheckpointManager, load_checkpoint, read_trainer_state, resolve_checkpoint
from .config import CheckpointConfig, ConfigError, OptimizerConfig, TrainingConfig, read_config_file
from .metrics import MetricsLogger, TrainingMetrics, ValidationMetrics
from .trainer import NonFiniteLossError, Plan, ResumeMismatchError, Trainable, Trainer, TrainerState

__all__ = ["Trainer", "Trainable", "TrainingConfig", "ValidationMetrics", "TrainingMetrics", "MetricsLogger",
           "CheckpointManager", "CheckpointConfig", "CheckpointInfo", "OptimizerConfig", "ConfigError",
           "NonFiniteLossError", "ResumeMismatchError", "Plan", "TrainerState", "load_checkpoint",
           "read_trainer_state", "resolve_checkpoint", "read_config_file"]
