"""The package version, in one place: pyproject.toml reads it, and so do `audiofx --version`,
feature files, batch reports, the design cache key and the bench CSV."""

__version__ = "0.1.0"
