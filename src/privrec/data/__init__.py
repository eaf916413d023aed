"""Data layer: interactions, attributes, loaders, split and sampling."""

from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.interactions import Interactions
from privrec.data.registry import DATASETS, load_dataset
from privrec.data.split import Split, leave_last_out
from privrec.data.synthetic import SyntheticConfig, make_synthetic

__all__ = [
    "DATASETS",
    "Attribute",
    "Dataset",
    "Interactions",
    "Split",
    "SyntheticConfig",
    "UserAttributes",
    "leave_last_out",
    "load_dataset",
    "make_synthetic",
]
