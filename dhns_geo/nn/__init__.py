"""Neural modules: scorers, modality fusion, R-GCN encoder, KGC model."""

from dhns_geo.nn.encoder import RGCNEncoder, add_inverse_edges
from dhns_geo.nn.fusion import (FUSIONS, GateFusion, ModalityFusion,
                                MultimodalEntityEmbedding)
from dhns_geo.nn.model import EntityTable, KGCModel
from dhns_geo.nn.scorers import (SCORERS, ComplEx, DistMult, RotatE, Scorer,
                                 TransE, make_scorer)

__all__ = ["RGCNEncoder", "add_inverse_edges", "ModalityFusion",
           "MultimodalEntityEmbedding", "FUSIONS", "GateFusion", "EntityTable", "KGCModel", "SCORERS",
           "ComplEx", "DistMult", "RotatE", "Scorer", "TransE", "make_scorer"]
