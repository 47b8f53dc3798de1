"""Generated documentation is current: the README's tables equal reports/*.json, docs/CONFIG.md
equals the config rules, and each shipped model's card states its own metrics.json."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT

MODELS = sorted(p for p in (ROOT / "models").iterdir() if (p / "metrics.json").is_file())


def test_generated_tables_and_config_reference_are_current():
    result = subprocess.run([sys.executable, "scripts/docs.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_results_are_the_reports_figures():
    summary = json.loads((ROOT / "reports/multi30k/summary.json").read_text())
    de_en = json.loads((ROOT / "reports/de-en/report.json").read_text())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for row in summary:
        assert f"| {row['system']} | {row['pair']} | {row['bleu']:.2f} | {row['chrf']:.2f} |" in readme
    for name, system in de_en["systems"].items():
        if name in {row["system"] for row in summary}:
            continue  # quoted from the summary of all its directions
        assert f"| {name} | de-en | {system['bleu']:.2f} | {system['chrf']:.2f} |" in readme


def test_every_config_key_is_in_the_reference():
    from nmt.core.config import RULES

    reference = (ROOT / "docs/CONFIG.md").read_text(encoding="utf-8")
    for section, rules in RULES.items():
        for key in rules:
            assert f"| `{section}.{key}` |" in reference


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_a_model_card_states_its_own_metrics(model):
    metrics = json.loads((model / "metrics.json").read_text())
    card = (model / "README.md").read_text(encoding="utf-8")
    # a multilingual model's card has a row per split and direction, a bilingual one per split
    rows = {f"{split} {pair}": scores[split] for pair, scores in metrics["pairs"].items()
            for split in ("val", "test_2016_flickr")} if "pairs" in metrics else \
        {split: metrics[split] for split in ("val", "test_2016_flickr")}
    for label, scores in rows.items():
        row = re.search(rf"^\| {label} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", card, re.M)
        assert row is not None, f"{model.name}: no {label} row in the card"
        assert [float(x) for x in row.groups()] == [scores["bleu"], scores["bleu_lc"], scores["chrf"]]
