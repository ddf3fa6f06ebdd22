"""`audiofx server start|status|stop|serve`: a warm process that makes shell loops fast.

While a server runs, `audiofx process`, `watch`, `info`, `validate` and `stages` hand their work
to it (same outputs, messages and exit codes; see docs/server.md). `run_command` is what the server
runs for each of them: this app, in a process forked from the warm server.
"""

from __future__ import annotations

import json
import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import typer

from audiofx_cli.cli.common import DEBUG_HELP, error, exit_on_error
from audiofx_cli.errors import EXIT_FAILED, UsageError

server = typer.Typer(
    name="server",
    help="A warm audiofx process for shell loops: while it runs, process, watch, info, validate "
    "and stages start in milliseconds instead of seconds.\n\n"
    "[bold]Examples[/bold]\n\n"
    "  audiofx server start\n\n"
    '  for f in takes/*.wav; do audiofx process "$f" -c vocal -o "clean/${f##*/}"; done\n\n'
    "  audiofx server status\n\n"
    "  audiofx server stop\n\n"
    "AUDIOFX_SERVER=auto starts one on first use; AUDIOFX_SERVER=off or --no-server runs "
    "a command in its own process. The socket lives in $AUDIOFX_SERVER_DIR, else "
    "$XDG_RUNTIME_DIR/audiofx, else ~/.cache/audiofx/server-HOST (mode 0700).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
IdleTimeout = Annotated[
    str,
    typer.Option(
        "--idle-timeout", help="stop after this long without a job: 900, 30s, 15m, 2h; 0 never"
    ),
]
Jobs = Annotated[
    int | None, typer.Option("--jobs", "-j", help="jobs run at once (default: CPU cores)")
]


def parse_duration(text: str) -> float:
    """'900', '30s', '15m', '2h' -> seconds; UsageError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"--idle-timeout: '{text}' is not a duration (e.g. 900, 30s, 15m, 2h)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _duration_text(seconds: float) -> str:
    if seconds <= 0:
        return "none"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _check_jobs(jobs: int | None) -> int:
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    return jobs or os.cpu_count() or 1


@cache
def _click_command() -> Any:
    """The app as a click command, built once in the server: Typer rebuilds it from the
    functions' signatures on each `app()` call, 0.1 s that every job would pay again."""
    from typer.main import get_command

    from audiofx_cli.cli.app import app

    return get_command(app)


def run_command(argv: list[str], prog_name: str) -> int:
    """Run `argv` (argv[0] the program) as `app()` would in a fresh process; returns the exit
    code that process would have."""
    try:
        _click_command().main(args=argv[1:], prog_name=prog_name)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return EXIT_FAILED
    return 0


def _folder() -> Path:
    from audiofx_cli.server.paths import server_dir

    return Path(server_dir())


@server.command()
def start(
    idle_timeout: IdleTimeout = "15m",
    jobs: Jobs = None,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Start a server in the background and return once it is warm (exit 0 when one runs
    already)."""
    from audiofx_cli.server import control
    from audiofx_cli.server.protocol import fingerprint, fingerprint_difference

    with exit_on_error(debug):
        seconds, jobs = parse_duration(idle_timeout), _check_jobs(jobs)
        try:
            status = control.start(_folder(), seconds, jobs)
        except control.ServerError as exc:
            error(str(exc))
            raise typer.Exit(EXIT_FAILED) from None
        difference = fingerprint_difference(status.get("fingerprint") or {}, fingerprint())
        if difference:
            error(
                f"another audiofx server runs in {status['folder']} (pid {status['pid']}): "
                f"{difference}; stop it with 'audiofx server stop'"
            )
            raise typer.Exit(EXIT_FAILED)
        what = "started" if status["started"] else "already running"
        typer.echo(
            f"audiofx server {what}: pid {status['pid']}, {status['max_jobs']} jobs at a time, "
            f"idle timeout {_duration_text(status['idle_timeout_s'])}, socket {status['socket']}",
            err=True,
        )


@server.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Show whether a server runs: pid, uptime, jobs served, memory (exit 1 when none runs)."""
    from audiofx_cli.server import control

    with exit_on_error(debug):
        folder = _folder()
        try:
            reply = control.query(folder, "status")
        except control.ServerError as exc:
            error(str(exc))
            raise typer.Exit(EXIT_FAILED) from None
        if as_json:
            typer.echo(json.dumps(reply or {"running": False, "folder": str(folder)}, indent=2))
        elif reply is None:
            typer.echo(f"audiofx server: not running ({folder})")
        else:
            typer.echo(_status_text(reply))
        if reply is None:
            raise typer.Exit(EXIT_FAILED)


def _status_text(reply: dict[str, Any]) -> str:
    from audiofx_cli.server.protocol import fingerprint, fingerprint_difference

    mib = 1 << 20
    uptime = _duration_text(round(reply["uptime_s"]))
    lines = [
        f"audiofx server: running, pid {reply['pid']}, up {uptime}",
        f"  jobs:         {reply['jobs_served']} served, {reply['jobs_running']} running, "
        f"{reply['jobs_queued']} queued (at most {reply['max_jobs']} at a time)",
        f"  memory:       {reply['rss_bytes'] / mib:.0f} MiB resident (server), "
        f"{reply['jobs_rss_bytes'] / mib:.0f} MiB (running jobs)",
        f"  idle timeout: {_duration_text(reply['idle_timeout_s'])}",
        f"  socket:       {reply['socket']}",
        f"  log:          {reply['log']}",
        f"  audiofx:      {reply['version']} at {reply['package']}",
    ]
    difference = fingerprint_difference(reply.get("fingerprint") or {}, fingerprint())
    if difference:
        lines.append(f"  not used here: {difference}")
    return "\n".join(lines)


@server.command()
def stop(debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False) -> None:
    """Stop the server; jobs running on it are interrupted (exit 130), queued ones run in their
    own processes."""
    from audiofx_cli.server import control

    with exit_on_error(debug):
        try:
            last = control.stop(_folder())
        except control.ServerError as exc:
            error(str(exc))
            raise typer.Exit(EXIT_FAILED) from None
        if last is None:
            typer.echo("audiofx server: not running", err=True)
        else:
            typer.echo(
                f"audiofx server stopped: pid {last['pid']}, {last['jobs_served']} jobs served",
                err=True,
            )


@server.command()
def serve(
    idle_timeout: IdleTimeout = "15m",
    jobs: Jobs = None,
    ready_fd: Annotated[
        int | None, typer.Option(hidden=True, help="write one JSON line here when ready")
    ] = None,
) -> None:
    """Run a server in the foreground (for systemd, or to watch its log); `start` runs this in
    the background."""
    with exit_on_error(False):
        seconds, jobs = parse_duration(idle_timeout), _check_jobs(jobs)
        from audiofx_cli.server.daemon import Server

        def ready(answer: dict[str, Any]) -> None:
            if ready_fd is None:
                if "error" in answer:
                    error(answer["error"])
                elif answer.get("busy"):
                    error("another audiofx server runs (or is starting) in this folder")
                return
            with os.fdopen(ready_fd, "w") as pipe:
                pipe.write(json.dumps(answer) + "\n")

        code = Server(_folder(), run_command, idle_timeout_s=seconds, max_jobs=jobs).run(ready)
    raise typer.Exit(code)
