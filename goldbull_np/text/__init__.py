"""GoldbullText: the decoder language model, its config, its task, trainers and recipes.

    model = GoldbullText(ModelConfig.small(vocab_size=65))
    TextTrainer(model, TextTrainingConfig(max_steps=2000), tokenizer=tok).train(train, val)
"""
from .config import ModelConfig
from .model import GoldbullText
from .task import LanguageModelingTask
from .trainer import TextTrainer, TextTrainingConfig, generate_text
from .finetune import FineTuner, FineTuningConfig  # noqa: E402 - fine-tuning (LoRA / adapters)
from .run_config import DataConfig, RunConfig
from .bert import BertConfig, BertModel  # noqa: E402 - the BERT-family encoder (BERTScore, classification)
from .bert_classifier import BertForSequenceClassification, SequenceClassificationTask  # noqa: E402
from .bert_tokenizer import BertTokenizer  # noqa: E402

__all__ = ["ModelConfig", "GoldbullText", "LanguageModelingTask", "TextTrainer", "TextTrainingConfig", "generate_text",
           "FineTuner", "FineTuningConfig", "DataConfig", "RunConfig", "BertConfig", "BertModel",
           "BertForSequenceClassification", "SequenceClassificationTask", "BertTokenizer"]
