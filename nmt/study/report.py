"""``nmt study``: run experiments, write each one's JSON, figure(s) and section of the page.

    long-range   claims 1-2: long_range.json, long_range.png, probe.png
    sqrt-dk      claim 3:    sqrt_dk.json, sqrt_dk.png, sqrt_dk_training.png
    heads        claim 4:    heads.json, heads.png

Every model is trained for the same ``Budget`` (nmt/study/runs.py); runs and measures are kept
under ``runs`` so that the study resumes where it was stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from nmt.core.files import atomic_write_text
from nmt.study import experiments, figures, page
from nmt.study.runs import Budget, finished, run_dir
from nmt.study.sqrt_dk import random_vectors

EXPERIMENTS = ("long-range", "heads", "sqrt-dk")


def planned(names: tuple[str, ...], budget: Budget) -> list[tuple[str, int]]:
    models = {"long-range": experiments.LONG_RANGE_MODELS,
              "heads": tuple(f"transformer-h{h}" for h in experiments.HEADS),
              "sqrt-dk": tuple(m for pair in experiments.SCALING_MODELS.values() for m in pair)}
    wanted = dict.fromkeys(m for name in names for m in models[name])
    return [(m, seed) for m in wanted for seed in budget.seeds]


def run_study(names: tuple[str, ...], budget: Budget, runs: Path, out: Path, log=print) -> dict:
    """The experiments ``names``; returns their results by name."""
    out.mkdir(parents=True, exist_ok=True)
    todo = planned(names, budget)
    left = sum(not finished(run_dir(runs, m, s)) for m, s in todo)
    log(f"study: {', '.join(names)}; {len(todo)} models ({left} to train), each "
        f"{budget.describe()}; runs in {runs}")
    study = experiments.Study(budget, runs, log)
    results = {}
    for name in names:
        results[name] = {"long-range": long_range, "heads": heads, "sqrt-dk": sqrt_dk}[name](study, out)
        log(f"{name}: wrote {out}/{name.replace('-', '_')}.json and its section of {out}/README.md")
    return results


def write_json(out: Path, name: str, result: dict) -> None:
    atomic_write_text(out / f"{name}.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def long_range(study, out: Path) -> dict:
    result = experiments.long_range(study)
    result["verdicts"] = page.long_range_verdicts(result)
    write_json(out, "long_range", result)
    figures.long_range(result, out / "long_range.png")
    figures.probe(result, out / "probe.png")
    page.write_section(out / "README.md", "long_range", page.render_long_range(result))
    return result


def heads(study, out: Path) -> dict:
    result = experiments.heads(study)
    result["verdict"] = page.heads_verdict(result)
    write_json(out, "heads", result)
    figures.heads(result, out / "heads.png")
    page.write_section(out / "README.md", "heads", page.render_heads(result))
    return result


def sqrt_dk(study, out: Path) -> dict:
    """Random vectors, the scaled d_k-64 model's own queries and keys, and training with and
    without the scaling."""
    training = experiments.scaling(study)
    folder = run_dir(study.root, "transformer-h4", study.budget.seeds[0])
    layers = study.measures(folder, "scores")["scores"]
    result = {"experiment": "sqrt_dk", "random": random_vectors(),
              "model": {"path": str(folder / "last"), "pair": "de-en",
                        "sentences": min(200, len(study.val[0])), "layers": layers},
              "training": training}
    result["verdict"] = page.scaling_verdict(result)
    write_json(out, "sqrt_dk", result)
    figures.sqrt_dk_random(result["random"], out / "sqrt_dk.png")
    figures.scaling_curves(training, out / "sqrt_dk_training.png")
    page.write_section(out / "README.md", "sqrt_dk", page.render_scaling(result))
    return result
