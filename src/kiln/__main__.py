"""``python -m kiln`` is ``kiln``."""

from kiln.cli import main

main()
