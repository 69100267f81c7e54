"""GoldbullVision: ResNet and ViT image classifiers, image-folder datasets, augmentation, mixup/cutmix,
the classification task, VisionTrainer and the recipes behind ``goldbull train-vision`` / ``predict``."""
from .config import VisionConfig
from .data import ImageDataError, ImageFolderDataset, ImageSubset, split_indices
from .model import GoldbullVision
from .recipes import load_classifier, predict, train_classification
from .task import ImageClassificationTask, balanced_class_weights
from .trainer import VisionTrainer, VisionTrainingConfig, predict_files
from .transforms import Augmentation, Mixup, mixup_target

__all__ = ["VisionConfig", "GoldbullVision", "ImageFolderDataset", "ImageSubset", "ImageDataError", "split_indices",
           "ImageClassificationTask", "balanced_class_weights", "VisionTrainer", "VisionTrainingConfig",
           "train_classification", "predict", "predict_files", "load_classifier", "Augmentation", "Mixup",
           "mixup_target"]
