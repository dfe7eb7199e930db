"""A plain PyG link-prediction loop (RGCNConv encoder + DistMult decoder)
with DHNS negatives that follow the model as it learns.

Each step the encoder's table ``z`` goes to DHNS through a ``KGEAdapter``;
DiffHEG is conditioned on it (detached), trains one step, and returns
hierarchical negatives scored by the decoder, whose NTAT loss is added to
the loop's own. The user's model never touches dhns-geo's classes.

    python examples/pyg_rgcn_distmult_with_dhns.py
"""

import torch
import torch.nn.functional as F
from torch_geometric.nn import RGCNConv

from dhns_geo.adapters import KGEAdapter, evaluate_model
from dhns_geo.data import split_triples
from dhns_geo.datasets import ToyMMKG
from dhns_geo.online import OnlineDHNS

data = ToyMMKG()[0]
train, valid, test = (split_triples(data, s) for s in ("train", "valid", "test"))
known = torch.cat([train, valid, test])
num_nodes, num_rels = data["entity"].num_nodes, data.num_relations


class RGCNDistMult(torch.nn.Module):
    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(num_nodes, dim)
        self.conv = RGCNConv(dim, dim, num_rels, num_bases=4)
        self.rel = torch.nn.Parameter(torch.randn(num_rels, dim) * 0.1)

    def forward(self, edge_index, edge_type):
        return self.emb.weight + self.conv(self.emb.weight, edge_index, edge_type)

    def score(self, z, h, r, t):
        return (z[h] * self.rel[r] * z[t]).sum(-1)


def train_and_evaluate(with_dhns: bool, epochs: int = 300) -> float:
    """Trains the user's model with random negatives (plus DHNS's if
    ``with_dhns``) and returns its filtered test MRR."""
    torch.manual_seed(0)
    model = RGCNDistMult()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    dhns = OnlineDHNS(dim=64, seed=0, share=0.1)     # a tenth of the graph a step
    ei, et = train[:, [0, 2]].t(), train[:, 1]
    h, r, t = train.unbind(1)
    for epoch in range(1, epochs + 1):
        z = model(ei, et)
        pos = model.score(z, h, r, t)
        neg = model.score(z, h, r, torch.randint(0, num_nodes, t.shape))
        loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
        if with_dhns:
            order = torch.randperm(train.size(0))            # DHNS serves the first rows
            adapter = KGEAdapter(z, model.rel, "distmult")   # this step's encoded table
            loss = loss + dhns(adapter, h[order], r[order], t[order]).loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        adapter = KGEAdapter(model(ei, et), model.rel, "distmult")
        return evaluate_model(adapter, test, known, num_nodes, num_rels)["mrr"]


print(f"filtered test MRR, random negatives only:        {train_and_evaluate(False):.4f}")
print(f"filtered test MRR, random + DHNS hard negatives: {train_and_evaluate(True):.4f}")
