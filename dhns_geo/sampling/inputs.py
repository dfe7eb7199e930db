"""What every sampler's ``from_config`` reads from a run's data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from dhns_geo.data import (FilterIndex, num_entities, num_relations,
                           selected_features, training_triples)

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig


@dataclass
class SamplerInputs:
    """The numbers and triples a sampler is built from.

    Attributes:
        entities: ``N``.
        relations: The model's relations: ``R``, or ``2R`` with reciprocals.
        train: ``[E, 3]`` the triples an epoch goes through (with their
            reciprocals when the model has them).
        filter_index: The train triples as a filter, when the run filters
            its negatives (never valid or test triples: that would tell
            training which corruptions are true there).
    """

    entities: int
    relations: int
    train: Tensor
    filter_index: FilterIndex | None

    @classmethod
    def of(cls, config: "TrainConfig", data: "HeteroData") -> "SamplerInputs":
        train = training_triples(data, config.reciprocal)
        n = num_entities(data)
        relations = num_relations(data) * (2 if config.reciprocal else 1)
        index = (FilterIndex(train, n, relations) if config.filter_negatives
                 else None)
        return cls(n, relations, train, index)

    def train_filter(self) -> FilterIndex:
        """The training triples as a filter, whether or not the run filters
        its negatives (for samplers whose candidates hold the answers)."""
        return self.filter_index or FilterIndex(self.train, self.entities, self.relations)



def num_modalities(config: "TrainConfig", data: "HeteroData") -> int:
    """``M``: the structural modality and the features the model uses."""
    return 1 + len(selected_features(data, config.features))
