"""``python -m neuralglm``: the command-line interface."""

from neuralglm.cli import main

raise SystemExit(main())
