"""PyG's FB15k-237 KGE example (``examples/kge_fb15k_237.py`` in PyG's
repository, MIT license) with DHNS negatives and filtered head-and-tail
evaluation. Every line that differs from PyG's script ends in ``# DHNS``.

    python examples/pyg_kge_fb15k_237_dhns.py --model rotate --dhns
    python examples/pyg_kge_fb15k_237_dhns.py --model rotate      # PyG's negatives only

``--root`` is PyG's dataset folder (default ``data/FB15k`` as in PyG's
script; its ``raw/`` holds ``train.txt``, ``valid.txt``, ``test.txt``).
"""
import argparse
import os.path as osp

import torch
import torch.optim as optim

from torch_geometric.datasets import FB15k_237
from torch_geometric.nn import ComplEx, DistMult, RotatE, TransE
from dhns_geo.adapters import KGEAdapter, evaluate_model  # DHNS
from dhns_geo.online import OnlineDHNS  # DHNS

model_map = {
    'transe': TransE,
    'complex': ComplEx,
    'distmult': DistMult,
    'rotate': RotatE,
}

parser = argparse.ArgumentParser()
parser.add_argument('--model', choices=model_map.keys(), type=str.lower,
                    required=True)
parser.add_argument('--dhns', action='store_true')  # DHNS
parser.add_argument('--epochs', type=int, default=500)  # DHNS
parser.add_argument('--root', default=osp.join('data', 'FB15k'))  # DHNS
args = parser.parse_args()

device = 'cuda' if torch.cuda.is_available() else 'cpu'
path = args.root  # DHNS

train_data = FB15k_237(path, split='train')[0].to(device)
val_data = FB15k_237(path, split='val')[0].to(device)
test_data = FB15k_237(path, split='test')[0].to(device)

model_arg_map = {'rotate': {'margin': 9.0}}
model = model_map[args.model](num_nodes=train_data.num_nodes,
                              num_relations=train_data.num_edge_types,
                              hidden_channels=50,
                              **model_arg_map.get(args.model, {})).to(device)

loader = model.loader(
    head_index=train_data.edge_index[0],
    rel_type=train_data.edge_type,
    tail_index=train_data.edge_index[1],
    batch_size=1000,
    shuffle=True,
)

optimizer_map = {
    'transe': optim.Adam(model.parameters(), lr=0.01),
    'complex': optim.Adagrad(model.parameters(), lr=0.001, weight_decay=1e-6),
    'distmult': optim.Adam(model.parameters(), lr=0.0001, weight_decay=1e-6),
    'rotate': optim.Adam(model.parameters(), lr=1e-3),
}
optimizer = optimizer_map[args.model]
adapter = KGEAdapter.from_pyg(model)  # DHNS
dhns = OnlineDHNS.for_model(adapter, share=0.25, normalize=True) if args.dhns else None  # DHNS
known = torch.cat([torch.stack([d.edge_index[0], d.edge_type, d.edge_index[1]], 1)  # DHNS
                   for d in (train_data, val_data, test_data)])  # DHNS


def train():
    model.train()
    total_loss = total_examples = 0
    for head_index, rel_type, tail_index in loader:
        optimizer.zero_grad()
        loss = model.loss(head_index, rel_type, tail_index)
        if dhns is not None:  # DHNS
            loss = loss + dhns(adapter, head_index, rel_type, tail_index).loss()  # DHNS
        loss.backward()
        optimizer.step()
        total_loss += float(loss) * head_index.numel()
        total_examples += head_index.numel()
    return total_loss / total_examples


@torch.no_grad()
def test(data):
    model.eval()
    triples = torch.stack([data.edge_index[0], data.edge_type, data.edge_index[1]], 1)  # DHNS
    metrics = evaluate_model(model, triples, known, train_data.num_nodes,  # DHNS
                             train_data.num_edge_types)  # DHNS
    return metrics['mr'], metrics['mrr'], metrics['hits@10']  # DHNS


for epoch in range(1, args.epochs + 1):  # DHNS
    loss = train()
    print(f'Epoch: {epoch:03d}, Loss: {loss:.4f}')
    if epoch % 25 == 0:
        rank, mrr, hits = test(val_data)  # DHNS
        print(f'Epoch: {epoch:03d}, Val Mean Rank: {rank:.2f}, '
              f'Val MRR: {mrr:.4f}, Val Hits@10: {hits:.4f}')  # DHNS

rank, mrr, hits_at_10 = test(test_data)  # DHNS
print(f'Test Mean Rank: {rank:.2f}, Test MRR: {mrr:.4f}, '  # DHNS
      f'Test Hits@10: {hits_at_10:.4f}')  # DHNS
