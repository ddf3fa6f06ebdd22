"""Command-line interface (Typer): one file per command, torch imported lazily."""
