"""A plain PyG link-prediction loop (RGCNConv encoder + DistMult decoder)
that takes hard negatives, as entity ids, from DHNS.

dhns-geo is used as a library only: a small KGC model is trained with the DHNS
sampler, then ``mine_hard_negatives`` maps generated embeddings to real
entities. The user's own model never touches dhns-geo's classes.

    python examples/pyg_rgcn_distmult_with_dhns.py
"""

import torch
import torch.nn.functional as F
from torch_geometric.nn import RGCNConv

from dhns_geo.config import TrainConfig
from dhns_geo.build import build_loss, build_model, build_sampler
from dhns_geo.data import build_filter_index, split_triples
from dhns_geo.datasets import ToyMMKG
from dhns_geo.diffusion import SIDES, mine_hard_negatives, train_generator
from dhns_geo.evaluation import evaluate_link_prediction
from dhns_geo.objectives import NegativesObjective
from dhns_geo.training import Trainer

torch.manual_seed(0)
data = ToyMMKG()[0]
index = build_filter_index(data)
train = split_triples(data, "train")
num_nodes, num_rels = data["entity"].num_nodes, data.num_relations

# 1. DHNS hard negatives (entity ids) from a briefly trained dhns-geo model.
cfg = TrainConfig(sampler="dhns", dim=64, epochs=5, eval_every=5)
kgc = build_model(cfg, data)
sampler = build_sampler(cfg, data)
Trainer(kgc, NegativesObjective(sampler, build_loss(cfg)), data, cfg,
        torch.device("cpu"), index, progress=False, log=lambda line: None).fit()
g = torch.Generator().manual_seed(0)
train_generator(sampler, kgc, train, epochs=1, batch_size=512, generator=g,
                progress=False)
mined = mine_hard_negatives(sampler, kgc, train, index, g, k=1, levels=[2])
tail_side = mined["side"] == SIDES.index(("tail", "tail"))
hard_tails = torch.empty(train.size(0), dtype=torch.long)
hard_tails[mined["positive"][tail_side]] = mined["entity"][tail_side]


# 2. The user's own PyG model and loop.
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


def train_and_evaluate(hard: bool) -> float:
    """Trains the user's model with random negatives (plus the DHNS hard
    tails if ``hard``) and returns its filtered test MRR."""
    torch.manual_seed(0)
    model = RGCNDistMult()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    ei, et = train[:, [0, 2]].t(), train[:, 1]
    h, r, t = train.unbind(1)
    for epoch in range(1, 301):
        z = model(ei, et)
        rand_t = torch.randint(0, num_nodes, t.shape)
        pos = model.score(z, h, r, t)
        negatives = [model.score(z, h, r, rand_t)]
        if hard:
            negatives.append(model.score(z, h, r, hard_tails))
        loss = F.softplus(-pos).mean() + F.softplus(torch.stack(negatives, 1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = model(ei, et)

        def score_fn(known, relation, side):   # DistMult is symmetric in h, t
            return (z[known] * model.rel[relation]) @ z.t()
        metrics = evaluate_link_prediction(score_fn, split_triples(data, "test"), index)
    return metrics["mrr"]


print(f"{tail_side.sum().item()} DHNS hard tails, e.g. triple {train[0].tolist()} "
      f"-> negative tail {hard_tails[0].item()}")
print(f"filtered test MRR, random negatives only:        {train_and_evaluate(False):.4f}")
print(f"filtered test MRR, random + DHNS hard negatives: {train_and_evaluate(True):.4f}")
