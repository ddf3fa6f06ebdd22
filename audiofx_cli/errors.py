"""One small exception hierarchy; the CLI maps each class to an exit code.

Exit codes: 0 success, 1 processing failed, 2 usage or chain-spec error.
"""

from __future__ import annotations

import copy

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def short_text(value: object, limit: int = 60) -> str:
    """`value` as text for a one-line message: control characters escaped, at most `limit`
    characters (a long value is cut and its length given)."""
    text = value if isinstance(value, str) else repr(value)
    if text.isprintable() and len(text) <= limit:
        return text
    escaped = text[: limit + 1].encode("unicode_escape").decode("ascii")
    if len(text) > limit or len(escaped) > limit:
        return f"{escaped[:limit]}... ({len(text):,} characters)"
    return escaped


class AudiofxError(Exception):
    """Base class of every error audiofx raises on purpose. Processing failed: exit 1."""

    exit_code = EXIT_FAILED


class UsageError(AudiofxError):
    """The command line asks for something impossible (exit 2, nothing touched)."""

    exit_code = EXIT_USAGE


class ChainSpecError(UsageError):
    """A chain spec is invalid. The message names file:line, stage and key."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        stage: str | None = None,
        key: str | None = None,
        context: str | None = None,
    ) -> None:
        self.reason = message
        self.source = source
        self.line = line
        self.column = column
        self.stage = stage
        self.key = key
        self.context = context
        super().__init__(self._format())

    def in_context(self, context: str) -> ChainSpecError:
        """The same error, its message prefixed with `context` (e.g. the input file and its
        rate, for a check that depends on them)."""
        error = copy.copy(self)
        error.context = context
        error.args = (error._format(),)
        return error

    def _format(self) -> str:
        where = f"{self.context}: " if self.context else ""
        if self.source is not None:
            where += self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        what = ""
        if self.stage is not None:
            what = self.stage
            if self.key is not None:
                what += f": key '{self.key}'"
            what += ": "
        return f"{where}{what}{self.reason}"


class ParamError(ValueError):
    """A stage parameter value is not allowed. `key` names it (None: the stage as a whole).

    Raised by parameter declarations (`chain.params`) and stage constructors; the chain builder
    turns it into a `ChainSpecError` located at the stage's YAML line.
    """

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class DeviceError(UsageError):
    """The requested device does not exist on this machine."""


class OutputExistsError(UsageError):
    """The output path exists (or is the input) and overwriting was not allowed."""


class AudioFormatError(UsageError):
    """An output format or subtype that libsndfile cannot write."""


class AudioReadError(AudiofxError):
    """An input file could not be opened or decoded."""


class AudioWriteError(AudiofxError):
    """An output file could not be written."""


class ProcessingError(AudiofxError):
    """Processing produced something unusable (for instance NaN or Inf samples)."""
