"""GoldbullText: the decoder language model and its ModelConfig (``gb.ModelConfig``)."""
from .config import ModelConfig
from .model import GoldbullText

__all__ = ["ModelConfig", "GoldbullText"]

from .trainer import TextTrainer, TextTrainingConfig  # noqa: E402 - appended by the training layer

__all__ += ["TextTrainer", "TextTrainingConfig"]

from .finetune import FineTuner, FineTuningConfig  # noqa: E402 - fine-tuning (LoRA / adapters)

__all__ += ["FineTuner", "FineTuningConfig"]
