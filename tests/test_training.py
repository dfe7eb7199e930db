import json

import pytest
import torch

from conftest import chain_folder, losses, place_raw, random_mrr, record_lrs
from dhns_geo.config import TrainConfig
from dhns_geo.datasets import load_dataset
from dhns_geo.training import Trainer
from dhns_geo.errors import DHNSError
from dhns_geo.runs import load_run, run_training

pytestmark = pytest.mark.slow      # trains models

QUIET = {"log": lambda line: None, "progress": False}


def small(**kw):
    base = dict(dim=16, epochs=4, eval_every=2, batch_size=1024,
                num_negatives=8, patience=10)
    return TrainConfig(**{**base, **kw})


def params(run_dir, which="last.pt"):
    return torch.load(run_dir / which, weights_only=True)["model"]


def test_same_seed_same_result_and_seed_matters(tmp_path):
    a = run_training(small(), tmp_path / "a", **QUIET)
    b = run_training(small(), tmp_path / "b", **QUIET)
    c = run_training(small(seed=1), tmp_path / "c", **QUIET)
    assert a == b
    for k, v in params(tmp_path / "a").items():
        assert torch.equal(v, params(tmp_path / "b")[k])
    assert a["test"]["mrr"] != c["test"]["mrr"]


@pytest.mark.parametrize("schedule", [{"lr_plateau_factor": 1.0}, {"lr_half_life": 3},
                                      {"lr_plateau_factor": 0.5, "eval_every": 1}])
def test_resume_equals_uninterrupted(tmp_path, schedule):
    full = run_training(small(**schedule), tmp_path / "full", **QUIET)

    def crash(trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(small(**schedule), tmp_path / "cut", callbacks=[crash], **QUIET)
    assert len((tmp_path / "cut" / "history.csv").read_text().splitlines()) == 3
    resumed = run_training(TrainConfig(), tmp_path / "cut", resume=True, **QUIET)
    assert resumed == full
    for k, v in params(tmp_path / "full").items():
        assert torch.equal(v, params(tmp_path / "cut")[k]), k
    assert (tmp_path / "cut" / "history.csv").read_text() != ""
    with pytest.raises(DHNSError, match="already holds a run"):
        run_training(small(), tmp_path / "full", **QUIET)


def test_lr_half_life_halves_the_learning_rate_every_n_steps():
    from dhns_geo.datasets import ToyMMKG
    from dhns_geo.training import Trainer

    data = ToyMMKG()[0]
    trainer = Trainer.from_config(small(lr=0.04, lr_half_life=4, batch_size=256),
                                  data, torch.device("cpu"), **QUIET)
    seen = record_lrs(trainer)
    trainer.train_epoch()
    assert len(seen) == trainer.steps >= 8
    assert seen[:9] == pytest.approx([0.04 * 0.5 ** (i / 4) for i in range(9)])
    constant = Trainer.from_config(small(lr=0.04, lr_plateau_factor=1.0), data,
                                   torch.device("cpu"), **QUIET)
    constant.train_epoch()
    assert [g["lr"] for g in constant.optimizer.param_groups] == [0.04]


def test_training_learns_the_toy_graph(tmp_path):
    m = run_training(TrainConfig(epochs=15, eval_every=5), tmp_path / "r", **QUIET)
    history = (tmp_path / "r" / "history.csv").read_text().splitlines()[1:]
    losses = [float(line.split(",")[1]) for line in history]
    assert losses[-1] < 0.7 * losses[0]
    # Random ranking of 1000 entities gives MRR ~ 0.007.
    assert m["test"]["mrr"] > 0.08
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["test"]["mrr"] == pytest.approx(m["test"]["mrr"])
    config, data, model, _ = load_run(tmp_path / "r")
    assert config.epochs == 15 and model.num_entities == 1000


@pytest.mark.parametrize("scorer,encoder,loss", [
    ("transe", "none", "margin"), ("distmult", "rgcn", "softplus"),
    ("complex", "none", "self-adversarial"), ("rotate", "rgcn", "margin")])
def test_every_scorer_and_encoder_trains(tmp_path, scorer, encoder, loss):
    m = run_training(small(scorer=scorer, encoder=encoder, loss=loss, epochs=2,
                           regularizer="l3", reg_weight=1e-4, margin=1.0,
                           sampler="bernoulli", filter_negatives=True),
                     tmp_path / "r", **QUIET)
    trained = losses(tmp_path / "r")
    assert len(trained) == 2 and trained[1] < trained[0]
    assert m["test"]["num_triples"] == 804 and 0 < m["test"]["mrr"] <= 1


def test_config_validation():
    with pytest.raises(DHNSError, match="sampler must be one of"):
        TrainConfig(sampler="random")
    with pytest.raises(DHNSError, match="unknown option"):
        TrainConfig.from_dict({"epochz": 3})


def test_mkg_y_trains_offline(tmp_path):
    place_raw("MKG-Y", tmp_path)
    # One epoch of the ComplEx-N3 recipe's regime, at dim 32: it learns.
    m = run_training(TrainConfig(dataset="MKG-Y", root=str(tmp_path), epochs=1,
                                 eval_every=1, dim=32, batch_size=1000,
                                 training="1vsall", scorer="complex",
                                 reciprocal=True, optimizer="adagrad", lr=0.1,
                                 features="none"), tmp_path / "run", **QUIET)
    assert m["test"]["num_triples"] == 2663
    assert m["test"]["mrr"] > 50 * random_mrr(15000)        # about 0.067


def test_select_on_unseen_valid_triples_and_ranks_file(tmp_path):
    from dhns_geo.data import split_triples, unseen_triples
    from dhns_geo.datasets import ToyMMKG
    from dhns_geo.run_folder import load_checkpoint
    from dhns_geo.training import Trainer

    data = ToyMMKG()[0]
    valid, train = split_triples(data, "valid"), split_triples(data, "train")
    # Plant 5 train triples and a duplicate in valid: the unseen triples are
    # the distinct others, and the run selects on them.
    data.valid_triples = torch.cat([valid, train[:5], valid[:1]])
    unseen = unseen_triples(data, "valid")
    assert torch.equal(unseen, torch.unique(valid, dim=0))
    trainer = Trainer.from_config(small(select_on="valid-unseen", epochs=2), data,
                                  torch.device("cpu"), **QUIET)
    assert torch.equal(trainer.selection, unseen)
    (tmp_path / "r").mkdir()
    m = trainer.fit(tmp_path / "r")
    assert m["selection"]["num_triples"] == valid.size(0)
    assert m["valid"]["num_triples"] == valid.size(0) + 6
    ranks = load_checkpoint(tmp_path / "r" / "ranks.pt", required="test")
    n = m["test"]["num_triples"]
    assert ranks["test"]["head"].shape == ranks["test"]["tail"].shape == (n,)
    both = torch.cat([ranks["test"]["head"], ranks["test"]["tail"]])
    assert float((1 / both).mean()) == pytest.approx(m["test"]["mrr"])


def test_lr_plateau_factor_scales_the_rate_after_each_evaluation_without_gain():
    from dhns_geo.training import Trainer
    from dhns_geo.runs import load_dataset_for

    cfg = small(lr=0.04, lr_plateau_factor=0.5, eval_every=1, epochs=6)
    trainer = Trainer.from_config(cfg, load_dataset_for(cfg), torch.device("cpu"), **QUIET)
    scripted = iter([0.1, 0.2, 0.15, 0.25, 0.2, 0.25])     # no gain at epochs 3, 5, 6
    trainer.evaluate = lambda *a, **k: {"mrr": next(scripted)}
    trainer._finish = lambda run_dir, test: {}
    used = []                                  # the rate of each epoch's steps
    trainer.fit(callbacks=[lambda t, record: used.append(t.optimizer.param_groups[0]["lr"])])
    assert used == pytest.approx([0.04, 0.04, 0.04, 0.02, 0.02, 0.01])
    assert trainer.lr_scale == 0.125 and trainer.best_epoch == 4


def test_lr_plateau_patience_waits_for_evaluations_without_gain_in_a_row():
    from dhns_geo.training import Trainer
    from dhns_geo.runs import load_dataset_for

    cfg = small(lr=0.04, lr_plateau_factor=0.5, lr_plateau_patience=2, eval_every=1,
                epochs=8, patience=10)
    trainer = Trainer.from_config(cfg, load_dataset_for(cfg), torch.device("cpu"), **QUIET)
    # No gain at epochs 3 (one alone: kept), 5, 6 (two in a row: halved), 7, 8 (halved).
    scripted = iter([0.1, 0.2, 0.15, 0.25, 0.2, 0.24, 0.2, 0.1])
    trainer.evaluate = lambda *a, **k: {"mrr": next(scripted)}
    trainer._finish = lambda run_dir, test: {}
    used = []
    trainer.fit(callbacks=[lambda t, record: used.append(t.optimizer.param_groups[0]["lr"])])
    assert used == pytest.approx([0.04] * 6 + [0.02, 0.02])
    assert trainer.lr_scale == 0.25


def test_time_limit_stops_after_the_epoch_that_passes_it_evaluated_and_tested(tmp_path):
    from dhns_geo.runs import load_dataset_for

    cfg = small(epochs=10, eval_every=4, time_limit=25.0)
    trainer = Trainer.from_config(cfg, load_dataset_for(cfg), torch.device("cpu"), **QUIET)
    train_epoch = trainer.train_epoch
    trainer.train_epoch = lambda: {**train_epoch(), "seconds": 10.0}   # 10 s an epoch
    lines = []
    trainer.log = lines.append
    metrics = trainer.fit(tmp_path)
    # 10 + 10 < 25 <= 30: the third epoch is the last, evaluated off the
    # every-4 schedule, and the best model is tested.
    assert trainer.epoch == 3 and trainer.loop.seconds == 30.0
    assert [r["valid_mrr"] != "" for r in trainer.history] == [False, False, True]
    assert "time limit: 30 s" in lines[-1] and metrics["best_epoch"] == 3
    assert 0 < metrics["test"]["mrr"] <= 1
    from dhns_geo.training import LoopState
    resumed = LoopState()                                  # resumes with its clock
    resumed.load_state_dict(torch.load(tmp_path / "last.pt", weights_only=True)["loop"])
    assert resumed.seconds == 30.0


def test_tracked_score_of_a_group_is_the_mean_over_the_negatives_that_count():
    from dhns_geo.sampling.base import NegativeSampler, Negatives
    from dhns_geo.training import Trainer
    from dhns_geo.runs import load_dataset_for

    class HalfCovered(NegativeSampler):            # generated negatives for 4 of 8 rows
        def sample(self, positives, model, table, generator):
            emb = torch.ones(4, 2, model.dim)
            weight = (torch.arange(8) < 4).float().unsqueeze(1).expand(8, 2)
            return [Negatives(emb, emb, weight=weight, name="half")]

    cfg = small(batch_size=8)
    trainer = Trainer.from_config(cfg, load_dataset_for(cfg), torch.device("cpu"), **QUIET)
    trainer.objective.sampler = HalfCovered()
    batch = trainer.train_triples[:8]
    h, r, t = batch.unbind(1)
    with torch.no_grad():
        table = trainer.model.encode()
        emb = torch.ones(4, 2, cfg.dim)
        served = trainer.model(emb, r[:4].unsqueeze(1), emb, table)       # [4, 2]
    trainer.train_step(batch)
    assert float(trainer._sums["half"]) == pytest.approx(float(served.mean()), rel=1e-5)


def test_lr_drop_at_divides_the_rate_by_ten_from_that_step(tmp_path):
    config = TrainConfig(dataset=str(chain_folder(tmp_path)), dim=8, lr=0.04,
                         lr_drop_at=3, batch_size=2, num_negatives=4,
                         optimizer="adagrad", lr_plateau_factor=1.0)
    trainer = Trainer.from_config(config, load_dataset(config.dataset),
                                  torch.device("cpu"), **QUIET)
    assert isinstance(trainer.optimizer, torch.optim.Adagrad)
    seen = record_lrs(trainer)
    trainer.train_epoch()                          # 9 triples, batch 2: 5 steps
    assert seen == pytest.approx([0.04, 0.04, 0.04, 0.004, 0.004])


def test_a_slow_combination_is_named_at_the_start_with_the_cheaper_option():
    from dhns_geo.build import build_model, cost_notice
    from dhns_geo.datasets import load_dataset

    data = load_dataset("toy")                          # with features
    slow = TrainConfig(training="1vsall", reciprocal=True, scorer="complex",
                       fusion="attention")
    assert "--fusion gate" in cost_notice(slow, data)
    default = TrainConfig(training="1vsall", reciprocal=True, scorer="complex")
    assert "--features none" in cost_notice(default, data)   # auto: the factored gate
    assert type(build_model(default, data).fusion).__name__ == "GateFusion"
    assert type(build_model(TrainConfig(), data).fusion).__name__ == "ModalityFusion"
    assert cost_notice(TrainConfig(features="none", training="1vsall",
                                   fusion="attention"), data) is None
    dhns = cost_notice(TrainConfig(sampler="dhns"), data)      # the shared pool
    assert "8x" in dhns and "--dhns-share" in dhns
    assert cost_notice(TrainConfig(sampler="dhns", shared_negatives=False), data) is None
    assert "--mans-variant h" in cost_notice(TrainConfig(sampler="mans", shared_negatives=False), data)
    assert "3.55x" in cost_notice(TrainConfig(sampler="mans", mans_variant="v"), data)
    assert "3.89x" in cost_notice(TrainConfig(sampler="mans", mans_variant="a"), data)
    assert cost_notice(TrainConfig(sampler="dhns", dhns_share=0.25), data) is None
    for cheaper in ("h", "t"):                 # t: v's epoch for 30 % of the steps only
        assert cost_notice(TrainConfig(sampler="mans", mans_variant=cheaper), data) is None
    assert cost_notice(TrainConfig(), data) is None
