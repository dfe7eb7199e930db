"""Scoring id negatives, forward and backward: gather + ``bmm`` +
scatter-add (:func:`gathered_dots_dense`) against SDDMM forward and sparse
products backward (:func:`gathered_dots_sparse`), on the CPU or a GPU::

    python benchmarks/studies/gathered_dots.py [--device cuda] [--entities 15000 1000000]
"""

from __future__ import annotations

import argparse
import functools
import time

import torch

from dhns_geo.nn.gathered import gathered_dots_dense, gathered_dots_sparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--entities", type=int, nargs="+", default=[15000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--negatives", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    dev = torch.device(args.device)
    b, k, d = args.batch_size, args.negatives, args.dim
    print("| entities | dense: gather + bmm (ms) | sparse: SDDMM (ms) | max grad diff |")
    print("| --- | --- | --- | --- |")
    for n in args.entities:
        g = torch.Generator(device=dev).manual_seed(0)
        table = torch.randn(n, d, device=dev, generator=g).requires_grad_()
        query = torch.randn(b, 2, d, device=dev, generator=g).requires_grad_()
        index = torch.randint(0, n, (b, k), device=dev, generator=g)
        which = torch.randint(0, 2, (b, k), device=dev, generator=g)
        grad = torch.randn(b, k, device=dev, generator=g)

        times, grads = [], []
        for impl in (gathered_dots_dense, gathered_dots_sparse):
            fn = functools.partial(impl, table, query, index, which)
            for _ in range(3):
                fn().backward(grad)
            table.grad = None
            fn().backward(grad)
            grads.append(table.grad.clone())
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.repeats):
                fn().backward(grad)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / args.repeats * 1e3)
        diff = (grads[0] - grads[1]).abs().max().item()
        print(f"| {n:,} | {times[0]:.2f} | {times[1]:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
