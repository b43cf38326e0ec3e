"""``python -m llm2ctr.student <verb> ...`` (what ``accelerate launch -m llm2ctr.student train`` runs)."""

import sys

from llm2ctr.cli import main

if __name__ == "__main__":
    sys.exit(main(["student", *sys.argv[1:]]))
