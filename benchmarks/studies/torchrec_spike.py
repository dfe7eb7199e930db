"""Go/no-go: TorchRec's row-wise sharded EmbeddingCollection on 2 gloo CPU ranks.

A 1001 x 16 table is sharded row-wise over the ranks (TorchRec's
``DistributedModelParallel``, fused optimizer in the backward); each rank looks
up 64 ids of its own, checks them against the unsharded table, takes one step
of ``sum(lookup * c)`` and checks its shard against a one-process reference.

    pip install torch==2.13.0 fbgemm-gpu-cpu==1.8.0
    pip install --no-deps torchrec==1.8.0
    pip install iopath pyre-extensions torchmetrics tensordict typing_inspect
    torchrun --nproc_per_node 2 benchmarks/studies/torchrec_spike.py sgd
    # ... adagrad | rowwise_adagrad | adam

Results: benchmarks/results/sharding/spike.md.
"""
import os, sys, traceback
import torch, torch.distributed as dist

def main(opt_name="sgd"):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    from torchrec.modules.embedding_configs import EmbeddingConfig
    from torchrec.modules.embedding_modules import EmbeddingCollection
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.sharding_plan import construct_module_sharding_plan, row_wise
    from torchrec.distributed.types import ShardingEnv, ShardingPlan
    from torchrec.distributed.embedding import EmbeddingCollectionSharder
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward
    from torchrec.sparse.jagged_tensor import KeyedJaggedTensor
    N, D = 1001, 16
    torch.manual_seed(0)
    full = torch.randn(N, D)
    ec = EmbeddingCollection(tables=[EmbeddingConfig(name="entity", embedding_dim=D, num_embeddings=N, feature_names=["ids"])], device=torch.device("meta"))
    opts = {"sgd": (torch.optim.SGD, {"lr": 0.1}), "adagrad": (torch.optim.Adagrad, {"lr": 0.1}),
            "rowwise_adagrad": (__import__("torchrec.optim.rowwise_adagrad", fromlist=["RowWiseAdagrad"]).RowWiseAdagrad, {"lr": 0.1}),
            "adam": (torch.optim.Adam, {"lr": 0.1})}
    cls, kw = opts[opt_name]
    apply_optimizer_in_backward(cls, ec.parameters(), kw)
    plan = construct_module_sharding_plan(ec, per_param_sharding={"entity": row_wise()}, local_size=world, world_size=world, device_type="cpu")
    print(rank, "plan", plan, flush=True)
    model = DistributedModelParallel(ec, env=ShardingEnv.from_process_group(dist.group.WORLD), plan=ShardingPlan({"": plan}), device=torch.device("cpu"), sharders=[EmbeddingCollectionSharder()])
    sd = model.state_dict()
    key = [k for k in sd if "entity" in k][0]
    st = sd[key]
    for shard in st.local_shards():
        off = shard.metadata.shard_offsets[0]; n = shard.tensor.size(0)
        shard.tensor.copy_(full[off:off + n])
        print(rank, "owns rows", off, off + n, flush=True)
    g = torch.Generator().manual_seed(rank + 1)
    ids = torch.randint(0, N, (64,), generator=g)
    kjt = KeyedJaggedTensor.from_lengths_sync(keys=["ids"], values=ids, lengths=torch.ones(64, dtype=torch.int32))
    out = model(kjt)
    vals = out["ids"].values()
    print(rank, "lookup equal:", torch.allclose(vals, full[ids]), flush=True)
    c = torch.randn(64, D, generator=g)
    (vals * c).sum().backward()
    # reference: SGD on summed grads over ranks
    all_ids = [torch.empty_like(ids) for _ in range(world)]; dist.all_gather(all_ids, ids)
    all_c = [torch.empty_like(c) for _ in range(world)]; dist.all_gather(all_c, c)
    grad = torch.zeros(N, D)
    for i_, c_ in zip(all_ids, all_c):
        grad.index_add_(0, i_, c_)
    gm = grad / world
    if opt_name == "sgd":
        ref_mean = full - 0.1 * gm
    elif opt_name == "adagrad":
        ref_mean = full - 0.1 * gm / (gm * gm).sqrt().add(1e-10)
    elif opt_name == "rowwise_adagrad":
        ref_mean = full - 0.1 * gm / (gm * gm).mean(1, keepdim=True).sqrt().add(1e-10)
    else:
        ref_mean = full - 0.1 * torch.sign(gm)   # first Adam step
    ref = full - 0.1 * grad
    ok = True
    for shard in model.state_dict()[key].local_shards():
        off = shard.metadata.shard_offsets[0]; n = shard.tensor.size(0)
        ok_s = torch.allclose(shard.tensor, ref[off:off + n], atol=1e-6)
        ok_mean = torch.allclose(shard.tensor, ref_mean[off:off + n], atol=1e-4)
        print(rank, opt_name, "max diff to the one-process reference (mean grad):", float((shard.tensor - ref_mean[off:off + n]).abs().max()), flush=True)
        print(rank, "step equal to summed-grad SGD:", ok_s, "mean-grad:", ok_mean, flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else "sgd")
    except Exception:
        traceback.print_exc(); sys.exit(1)
