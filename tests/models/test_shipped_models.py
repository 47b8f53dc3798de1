"""The models that ship in models/: what the README promises a user gets out of the box.

Every shipped directory loads (checksums, config, target vocabulary), and the service made of
all of them offers every direction it should, each from the model with the best val BLEU, and
gives the README's example translation.
"""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from nmt.models.directory import read_model_config
from serve.registry import Registry, find_model_dirs

SHIPPED = find_model_dirs(ROOT / "models")
README_EXAMPLE = ("Ein Hund rennt durch den Schnee.", "A dog runs through the snow.")
EXAMPLES = {"de": README_EXAMPLE[0], "en": README_EXAMPLE[1],
            "fr": "Un chien court dans la neige.", "cs": "Pes běží sněhem."}


def test_models_ship():
    assert {p.name for p in SHIPPED} >= {"transformer-de-en", "rnn-de-en"}


@pytest.fixture(scope="module")
def registry():
    return Registry.load(SHIPPED)


def test_every_shipped_direction_translates(registry):
    for name, translator in registry.translators.items():
        for src, tgt in translator.pairs:
            view = translator.for_pair(src, tgt)
            assert view.target_vocabularies.get(tgt), f"{name} has no {tgt} output list"
            [out] = view.translate([EXAMPLES[src]], beam_size=2)
            assert out.strip(), f"{name} {src}-{tgt} gave nothing"


def test_default_pair_is_the_best_on_val_and_gives_the_readme_example(registry):
    scores = {p.name: registry.scores[(p.name, "de", "en")] for p in SHIPPED
              if ("de", "en") in registry.translators[p.name].pairs}
    assert all(score > 0 for score in scores.values()), scores  # read from metrics.json
    chosen = registry.defaults[("de", "en")]
    assert scores[chosen] == max(scores.values())
    assert registry.pick("de", "en").translate([README_EXAMPLE[0]]) == [README_EXAMPLE[1]]


def test_languages_list_every_served_pair(registry):
    pairs = {(s, t) for translator in registry.translators.values() for s, t in translator.pairs}
    listed = {(lang["code"], target) for lang in registry.languages() for target in lang["targets"]}
    assert listed == pairs


def test_shipped_metrics_name_their_test_scores():
    for path in SHIPPED:
        metrics = json.loads((path / "metrics.json").read_text())
        config = read_model_config(path)
        assert metrics["test_2016_flickr"]["bleu"] > 30, path
        if config.data.pairs:
            assert set(metrics["pairs"]) == set(config.data.pairs), path


def test_acronyms_come_through_and_words_typed_in_capitals_are_translated(registry):
    translator = registry.pick("de", "en")
    acronyms, emphasis = translator.translate(["Die USA und die EU.", "Ein Hund rennt SEHR schnell."])
    assert "EU" in acronyms and "USA" in acronyms  # "EU" was translated as a second "USA"
    assert "SEHR" not in emphasis and "very" in emphasis.lower()
    [truck] = translator.translate(["Ein LKW fährt."])  # an acronym the model knows: translated
    assert "LKW" not in truck
