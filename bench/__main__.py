"""Entry point: `python -m bench [--events N] [--rounds R] [--bootstrap-servers ADDR]`."""

from bench.cli import main

raise SystemExit(main())
