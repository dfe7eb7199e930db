"""Data layer: readers, the MMKG ``HeteroData`` layout and the filter index."""

from dhns_geo.data.filter import FilterIndex
from dhns_geo.data.io import KnowledgeGraph, read_kg, read_openke, read_tsv
from dhns_geo.data.mmkg import (EDGE_TYPE, ENTITY, MODALITIES, add_reciprocals,
                                all_triples,
                                attach_features, modality_features,
                                selected_features,
                                num_entities, num_relations, quality_report,
                                split_triples, to_hetero_data, training_triples,
                                unseen_triples)

__all__ = [
    "FilterIndex", "KnowledgeGraph", "read_kg", "read_openke", "read_tsv",
    "EDGE_TYPE", "ENTITY", "MODALITIES", "add_reciprocals", "all_triples", "attach_features",
    "modality_features", "selected_features", "num_entities", "num_relations", "quality_report",
    "split_triples", "to_hetero_data", "training_triples", "unseen_triples", "build_filter_index",
]


def build_filter_index(data) -> FilterIndex:
    """The :class:`FilterIndex` of all train, valid and test triples."""
    return FilterIndex(all_triples(data), num_entities(data),
                       num_relations(data))
