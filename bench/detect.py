"""Language identification accuracy per language, on whole captions, their first word and their
first two and three words (what translation clients often send). Prints JSON.

    python bench/detect.py                       # test_2016_flickr, the shipped models' languages
    python bench/detect.py --split val --languages en,de,fr,cs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt.data.corpus import read_lines, split_file  # noqa: E402
from nmt.text.language import LanguageDetector  # noqa: E402

LENGTHS = {"caption": None, "1 word": 1, "2 words": 2, "3 words": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/multi30k")
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--languages", default="en,de,fr,cs")
    args = parser.parse_args()
    languages = args.languages.split(",")
    detector = LanguageDetector(languages)
    result = {"benchmark": "detect", "split": args.split, "languages": languages, "accuracy": {}}
    start = time.perf_counter()
    texts = 0
    for lang in languages:
        captions = read_lines(split_file(args.data, args.split, lang))
        row = {}
        for name, words in LENGTHS.items():
            inputs = [c if words is None else " ".join(c.split()[:words]) for c in captions]
            right = sum(detector.best(text).language == lang for text in inputs)
            row[name] = round(right / len(inputs), 4)
            texts += len(inputs)
        result["accuracy"][lang] = row
    result["texts_per_second"] = round(texts / (time.perf_counter() - start))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
