"""Run tracking: TensorBoard logging as a :class:`~dhns_geo.training.Trainer`
callback (the optional ``[tensorboard]`` extra).

    from dhns_geo.tracking import TensorBoardLogger
    run_training(config, "runs/x", callbacks=[TensorBoardLogger("tb/x")])

or ``dhns train --tensorboard tb/x``; then ``tensorboard --logdir tb``.
``history.csv`` in the run folder is written as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dhns_geo.errors import DHNSError


class TensorBoardLogger:
    """Logs every epoch: ``train/loss``, ``train/triples_per_s``,
    ``valid/mrr`` (on evaluated epochs) and the trainer's
    :attr:`~dhns_geo.training.Trainer.epoch_stats` (for DHNS:
    ``dhns/generator_loss`` and ``dhns/score_level_tN``, the mean score of
    the generated negatives of each hardness level).

    Args:
        log_dir: The folder of the event files.
    """

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise DHNSError("--tensorboard needs TensorBoard: pip install "
                            "'dhns-geo[tensorboard]'") from None
        self.writer = SummaryWriter(str(log_dir))

    def __call__(self, trainer: Any, record: dict) -> None:
        epoch = record["epoch"]
        self.writer.add_scalar("train/loss", record["loss"], epoch)
        self.writer.add_scalar("train/triples_per_s", record["triples_per_s"], epoch)
        if record["valid_mrr"] != "":
            self.writer.add_scalar("valid/mrr", record["valid_mrr"], epoch)
        for name, value in trainer.epoch_stats.items():
            self.writer.add_scalar(name, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
