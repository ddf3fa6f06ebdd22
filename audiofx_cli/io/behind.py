"""Write-behind: one background thread writes each block while the engine computes the next.

Used by the audio and feature sinks. At most one block is in flight, so memory stays bounded
(the block being written and the one being computed); libsndfile, numpy copies and file
writes release the GIL, so the two overlap. An error in the writer is raised at the next
`submit` or at `wait`.

Example:
    >>> done = []
    >>> behind = WriteBehind("doc")
    >>> behind.submit(done.append, 1)
    >>> behind.submit(done.append, 2)
    >>> behind.close(); done
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class WriteBehind:
    """One writer thread, one block in flight (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self._thread: ThreadPoolExecutor | None = ThreadPoolExecutor(
            1, thread_name_prefix=f"audiofx-{name}"
        )
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[..., None], *args: Any) -> None:
        """Wait for the block in flight (raising its error), then start `write(*args)`."""
        assert self._thread is not None, "submit after close"
        self.wait()
        self._pending = self._thread.submit(write, *args)

    def wait(self) -> None:
        """Wait for the block in flight; its error (if any) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self, errors: bool = True) -> None:
        """Wait for the block in flight and stop the thread; with errors=False a failure of
        that block is dropped (the caller is already failing)."""
        try:
            self.wait()
        except BaseException:
            if errors:
                raise
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None
