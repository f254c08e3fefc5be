"""`python -m exporter` is the same as the `lineage-exporter` command."""

from exporter.cli import main

raise SystemExit(main())
