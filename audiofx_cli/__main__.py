"""`python -m audiofx_cli` runs the CLI."""

from audiofx_cli.cli.main import main

main()
