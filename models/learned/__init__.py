"""A learned cross-modal dense descriptor for ``local``'s template matching (CFOG's contract)."""

from models.learned.data import TrainingPair, aligned_sar, prepare_pair, split_pairs
from models.learned.features import describe, standardise
from models.learned.net import DescriptorNet, Modality, default_conf
from models.learned.train import TrainConfig, TrainResult, train_descriptor
from models.learned.weights import FORMAT, load_descriptor, save_descriptor

__all__ = [
    "FORMAT",
    "DescriptorNet",
    "Modality",
    "TrainConfig",
    "TrainResult",
    "TrainingPair",
    "aligned_sar",
    "default_conf",
    "describe",
    "load_descriptor",
    "prepare_pair",
    "save_descriptor",
    "split_pairs",
    "standardise",
    "train_descriptor",
]
