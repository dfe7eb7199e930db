"""Entity stores (dhns_geo/stores.py): the row-sparse store of one process
trains the model of dense Adagrad while touching only a step's rows."""

import pytest
import torch

from conftest import TOY_TRAIN, summation_order_atol
from dhns_geo.config import TrainConfig
from dhns_geo.errors import OptionError
from dhns_geo.runs import load_dataset_for, load_run, run_training
from dhns_geo.stores import ReplicatedStore, RowSparseStore
from dhns_geo.training import Trainer

pytestmark = pytest.mark.slow      # trains models

BASE = {"dim": 16, "epochs": 2, "eval_every": 1, "num_negatives": 16,
        "optimizer": "adagrad", "lr": 0.1, "batch_size": 256}
QUIET = {"log": lambda line: None, "progress": False}


def test_row_sparse_store_trains_the_model_of_dense_adagrad(tmp_path):
    dense = run_training(TrainConfig(**BASE), tmp_path / "dense", **QUIET)
    sparse = run_training(TrainConfig(**BASE, sparse_entities=True),
                          tmp_path / "sparse", **QUIET)
    a, b = (load_run(tmp_path / r)[2].state_dict() for r in ("dense", "sparse"))
    atol = summation_order_atol(TrainConfig(**BASE), TOY_TRAIN)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=atol, rtol=0)
    assert sparse["test"]["mrr"] == pytest.approx(dense["test"]["mrr"], abs=1e-4)


def test_a_step_reads_and_writes_only_the_rows_it_touches():
    config = TrainConfig(**BASE, sparse_entities=True)
    trainer = Trainer.from_config(config, load_dataset_for(config),
                                  torch.device("cpu"), **QUIET)
    assert isinstance(trainer.store, RowSparseStore)
    weight = trainer.model.entities.structural.weight
    assert all(p is not weight for group in trainer.optimizer.param_groups
               for p in group["params"])                  # the store updates it
    batch = trainer.train_triples[:8]
    seen = []
    trainer.store.optimizer.step = lambda: seen.append(weight.grad.coalesce())
    before = weight.detach().clone()
    trainer.train_step(batch)
    (grad,) = seen
    assert grad.is_sparse
    rows = set(grad.indices()[0].tolist())
    # The batch's heads and tails and the 16 shared negatives, nothing more.
    assert set(batch[:, [0, 2]].reshape(-1).tolist()) <= rows
    assert len(rows) <= 2 * 8 + 16
    assert torch.equal(weight.detach(), before)              # the step was stubbed


def test_resume_restores_the_stores_adagrad_sums(tmp_path):
    config = TrainConfig(**{**BASE, "epochs": 3}, sparse_entities=True)
    run_training(config, tmp_path / "full", **QUIET)
    run_training(TrainConfig(**{**BASE, "epochs": 3, "sparse_entities": True}),
                 tmp_path / "cut", **QUIET)
    # Rewind the second run to epoch 2 and train epoch 3 again.
    import shutil
    shutil.copy(tmp_path / "cut" / "last.prev.pt", tmp_path / "cut" / "last.pt")
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert state["loop"]["epoch"] == 2 and "optimizer" in state["store"]
    run_training(config, tmp_path / "cut", resume=True, **QUIET)
    a, b = (load_run(tmp_path / r, which="last.pt")[2].state_dict()
            for r in ("full", "cut"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=1e-6)


def test_stores_by_option():
    config = TrainConfig(**BASE)
    trainer = Trainer.from_config(config, load_dataset_for(config),
                                  torch.device("cpu"), **QUIET)
    assert isinstance(trainer.store, ReplicatedStore)
    for bad in ({"optimizer": "adam"}, {"training": "1vsall"},
                {"encoder": "rgcn"}):
        with pytest.raises(OptionError, match="sparse_entities.*used only with"):
            TrainConfig(**{**BASE, **bad, "sparse_entities": True,
                           **({"num_negatives": 1024} if "training" in bad else {})})
