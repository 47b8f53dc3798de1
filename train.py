"""Same as `nmt train`: python train.py --config configs/transformer-de-en.toml"""

import sys

from nmt.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
