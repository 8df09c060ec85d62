"""``python -m runhouse``: the same as the ``runhouse`` command."""

from runhouse.cli import main

raise SystemExit(main())
