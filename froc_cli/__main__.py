"""``python -m froc_cli`` runs the ``froc`` command line."""

from froc_cli.cli import main

main()
