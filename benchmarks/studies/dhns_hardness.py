"""How hard DHNS's negatives are, and how much of the training signal they carry.

For each DHNS run folder and each hardness level, on positives of a split:

* ``above_pos``: share of generated negatives that score above their positive;
* ``entity_pct``: share of all real entities that score above the generated
  negative for the same query (0: harder than every real entity, 0.5: as hard
  as a uniform negative on average); ``true_pct`` is that share for the true
  answer itself (its raw rank / N);
* ``norm_ratio``: mean norm of the generated (fused) entities over that of
  the real ones;
* ``grad_share``: the level's share of the loss gradient on negative scores
  in a training step, against the base sampler's negatives: the derivative
  of the self-adversarial loss by a negative score is its adversarial weight
  times ``sigmoid(margin * factor + score)``, scaled by the group's loss
  weight (``mu * level weight / #levels``).

Writes a markdown table and a PNG (one panel per measure)::

    python benchmarks/studies/dhns_hardness.py runs/ablation/MKG-Y-rotate-dhns-seed0 \\
        runs/ablation/MKG-Y-rotate-dhns-mu1-seed0 --out benchmarks/results/ablation/hardness
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from dhns_geo.build import build_loss, build_sampler
from dhns_geo.data import split_triples
from dhns_geo.losses import KGELoss, negative_weights
from dhns_geo.runs import load_run
from dhns_geo.training import objective_state


def gradient_mass(loss: KGELoss, neg: Tensor, factor: Tensor | float,
                  weight: Tensor | None = None) -> Tensor:
    """Per positive ``[B]``: the sum over its ``[B, K]`` negatives of
    ``d loss / d score`` of a logistic loss (negative weight x
    ``sigmoid(margin * factor + score)``)."""
    temperature = loss.temperature if loss.kind == "self-adversarial" else None
    w = negative_weights(neg, weight, temperature)
    return (w * torch.sigmoid(loss.margin * factor + neg)).sum(-1)


@torch.no_grad()
def hardness(run_dir: Path, split: str, limit: int, seed: int) -> list[dict]:
    """One row per level of a DHNS run (see the module docstring)."""
    config, data, model, checkpoint = load_run(run_dir)
    if config.sampler != "dhns":
        raise SystemExit(f"{run_dir}: trained with --sampler {config.sampler}, "
                         "not dhns")
    sampler = build_sampler(config, data).to(model.device)
    sampler.load_state_dict(objective_state(checkpoint))
    loss = build_loss(config)
    if loss.kind == "margin":
        raise SystemExit(f"{run_dir}: the gradient share needs a logistic loss")
    positives = split_triples(data, split).to(model.device)[:limit]
    generator = torch.Generator(device=model.device).manual_seed(seed)
    table = model.encode()
    score_all = model.score_all_fn()
    h, r, t = positives.unbind(1)
    real_h, real_t = table.fused(h), table.fused(t)
    pos = model(real_h, r, real_t, table)
    all_tails, all_heads = score_all(h, r, "tail"), score_all(t, r, "head")

    rel = model.relations(r)
    base = sampler.base.sample(positives, model, table, generator)
    base_mass = sum(g.loss_weight * gradient_mass(
        loss, g.score(model.scorer, real_h, rel, real_t, table),
        g.margin_factor, g.weight) for g in base)

    def share_above(head_scores: Tensor, tail_scores: Tensor) -> float:
        """Share of real entities scoring above the given ``[B]`` scores of
        head- and tail-corrupted triples."""
        return float(torch.cat([(all_heads > head_scores[:, None]).float().mean(1),
                                (all_tails > tail_scores[:, None]).float().mean(1)]
                               ).mean())

    rows = []
    levels = sampler.level_negatives(positives, model, table, generator)
    for i, group in zip(sampler.active_levels, levels):
        scores = group.score(model.scorer, real_h, rel, real_t, table)  # [B, 3]
        gen_h, gen_t = group.head[:, 0], group.tail[:, 1]
        mass = gradient_mass(loss, scores, group.margin_factor) * group.loss_weight
        rows.append({
            "run": run_dir.name, "level": i, "step": sampler.levels[i],
            "margin_factor": group.margin_factor, "loss_weight": group.loss_weight,
            "above_pos": float((scores > pos[:, None]).float().mean()),
            "entity_pct": share_above(scores[:, 0], scores[:, 1]),
            "true_pct": share_above(pos, pos),
            "grad_share": float((mass / (mass + base_mass)).mean()),
            "norm_ratio": float(torch.cat([gen_h, gen_t]).norm(dim=-1).mean()
                                / torch.cat([real_h, real_t]).norm(dim=-1).mean()),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    keys = ["run", "step", "margin_factor", "loss_weight", "above_pos",
            "entity_pct", "true_pct", "grad_share", "norm_ratio"]
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(
            f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k])
            for k in keys) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = (("above_pos", "share scoring above the positive"),
                ("entity_pct", "share of real entities scoring above"),
                ("grad_share", "share of the negatives' gradient"))
    fig, axes = plt.subplots(1, len(measures), figsize=(15, 3.6))
    for ax, (key, label) in zip(axes, measures):
        for run in dict.fromkeys(r["run"] for r in rows):
            mine = [r for r in rows if r["run"] == run]
            ax.plot([r["step"] for r in mine], [r[key] for r in mine],
                    marker="o", label=run)
        ax.set_xlabel("diffusion step of the level (1 = hardest)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    true_pct = sum(r["true_pct"] for r in rows) / len(rows)
    line = axes[1].axhline(true_pct, color="gray", linestyle="--",
                           label=f"the true answers ({true_pct:.3f})")
    axes[1].legend(handles=[line], fontsize=7)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="DHNS run folders")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="writes OUT.md and OUT.png")
    args = parser.parse_args()
    rows = [row for run in args.runs
            for row in hardness(run, args.split, args.limit, args.seed)]
    text = markdown(rows)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        plot(rows, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
