"""Entry point: `python -m bench [--events N] [--rounds R] [--partitions P] [--instances M]
[--bootstrap-servers ADDR]`."""

from bench.cli import main

raise SystemExit(main())
