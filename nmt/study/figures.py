"""The study's figures, one per claim (matplotlib, written without a display)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)


def with_range(axes, xs, spreads: list[dict], label: str, style: str = "o-") -> None:
    """Mean over seeds as a line, min-max over seeds as error bars."""
    means = [s["mean"] for s in spreads]
    # max(0, ..): the mean is rounded, the seeds' values are not
    low = [0 if s["mean"] is None else max(0, s["mean"] - s["min"]) for s in spreads]
    high = [0 if s["mean"] is None else max(0, s["max"] - s["mean"]) for s in spreads]
    means = [float("nan") if m is None else m for m in means]
    axes.errorbar(xs, means, yerr=[low, high], fmt=style, capsize=3, label=label)


def sqrt_dk_random(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    d_ks = [row["d_k"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.loglog(d_ks, [row["variance_raw"] for row in rows], "o-", label="q . k")
    left.loglog(d_ks, [row["variance_scaled"] for row in rows], "o-", label="q . k / sqrt(d_k)")
    left.set(xlabel="d_k", ylabel="variance of the scores", title="Scores")
    left.legend()
    for key, label in (("raw", "unscaled"), ("scaled", "scaled")):
        right.semilogx(d_ks, [row[key]["max_probability"] for row in rows], "o-",
                       label=f"largest probability, {label}")
        right.semilogx(d_ks, [row[key]["jacobian_norm"] for row in rows], "s--",
                       label=f"Jacobian norm, {label}")
    right.set(xlabel="d_k", title="Softmax over 32 keys")
    right.legend(fontsize=7)
    for axes in (left, right):
        axes.minorticks_off()
        axes.set_xticks(d_ks, [str(d) for d in d_ks])
    save(figure, path)


def scaling_curves(result: dict, path: Path) -> None:
    """Training loss by step, scaled against unscaled, one panel per d_k."""
    plt = pyplot()
    sizes = result["sizes"]
    figure, panels = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 3.5), squeeze=False)
    for axes, (d_k, runs) in zip(panels[0], sizes.items()):
        for label, style in (("scaled", "-"), ("unscaled", "--")):
            for i, curve in enumerate(runs[label]["curves"]):
                if curve["train"]:
                    steps, losses = zip(*curve["train"])
                    axes.plot(steps, losses, style, color="C0" if label == "scaled" else "C3",
                              label=label if i == 0 else None, alpha=0.8)
        axes.set(xlabel="update", ylabel="training loss", title=f"d_k = {d_k}")
        axes.legend()
    save(figure, path)


def long_range(result: dict, path: Path) -> None:
    """BLEU by source length (test and joined test sentences), one line per model."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, model in result["models"].items():
        buckets = [row["bucket"] for row in model["by_length"]]
        with_range(axes, range(len(buckets)), [row["bleu"] for row in model["by_length"]], name)
        axes.set_xticks(range(len(buckets)), buckets)
    axes.set(xlabel="source words", ylabel="BLEU (greedy)",
             title="Test and joined test sentences, by length")
    axes.legend(fontsize=8)
    save(figure, path)


def probe(result: dict, path: Path) -> None:
    """Share of translations carrying the probe phrase's word by input length, per position."""
    plt = pyplot()
    positions = ("start", "middle", "end")
    figure, panels = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for axes, position in zip(panels, positions):
        for name, model in result["models"].items():
            rows = [r for r in model["probe"] if r["position"] == position]
            with_range(axes, [r["words"] for r in rows], [r["copy_rate"] for r in rows], name)
        axes.set(xlabel="input words", title=f"phrase at the {position}")
    panels[0].set_ylabel("its word in the translation")
    panels[0].legend(fontsize=7)
    save(figure, path)


def heads(result: dict, path: Path) -> None:
    """BLEU, head divergence and masking costs by number of heads."""
    plt = pyplot()
    models = result["models"]
    counts = list(models)
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(12, 3.6))
    with_range(left, counts, [models[h]["val_bleu"] for h in counts], "val")
    with_range(left, counts, [models[h]["test_bleu"] for h in counts], "test", "s--")
    left.set(xlabel="heads", ylabel="BLEU (greedy)", title="Quality")
    left.legend()
    multi = [h for h in counts if models[h]["divergence"]["mean"] is not None]
    with_range(middle, multi, [models[h]["divergence"] for h in multi], "mean pairwise JS")
    middle.set(xlabel="heads", ylabel="bits", title="How different the heads attend")
    masked = [h for h in counts if "masking" in models[h]]
    for i, h in enumerate(masked):
        for seed, costs in enumerate(models[h]["masking"]["costs"]):  # one column per seed
            right.plot([i - 0.1 + 0.2 * seed] * len(costs), costs, "o", alpha=0.4, color=f"C{i}")
    right.axhline(0, color="grey", linewidth=0.8)
    right.set_xticks(range(len(masked)), masked)
    right.set(xlabel="heads", ylabel="BLEU lost", title="One head masked at a time")
    save(figure, path)
