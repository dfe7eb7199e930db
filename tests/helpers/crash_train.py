"""Runs ``dhns train ARGS`` and kills itself with SIGKILL at a chosen moment.

    python crash_train.py MOMENT N ARGS...

MOMENT is ``step`` (the N-th training step), ``eval`` (the N-th evaluation)
or ``write`` (half-way through writing the N-th checkpoint file).
"""

import io
import os
import signal
import sys

import torch

import dhns_geo.run_folder as run_folder
import dhns_geo.stores as stores
import dhns_geo.training as training
from dhns_geo.cli.main import main

moment, target, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = 0


def reached() -> bool:
    global calls
    calls += 1
    return calls == target


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if moment == "step":
    step = training.Trainer.train_step

    def train_step(self, batch):
        if reached():
            die()
        return step(self, batch)
    training.Trainer.train_step = train_step
elif moment == "eval":
    evaluate = stores.evaluate_link_prediction

    def evaluate_link_prediction(*args, **kwargs):
        if reached():
            die()
        return evaluate(*args, **kwargs)
    stores.evaluate_link_prediction = evaluate_link_prediction
elif moment == "write":
    save = torch.save

    def half_save(obj, handle):
        if not reached():
            return save(obj, handle)
        buffer = io.BytesIO()
        save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        handle.flush()
        die()
    run_folder.torch.save = half_save
main(argv)
