"""``python -m llm2ctr`` is the ``llm2ctr`` command."""

import sys

from llm2ctr.cli import main

sys.exit(main())
