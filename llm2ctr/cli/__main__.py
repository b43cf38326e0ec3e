"""``python -m llm2ctr.cli`` (used by ``accelerate launch -m llm2ctr.cli ...``)."""

import sys

from llm2ctr.cli import main

sys.exit(main())
