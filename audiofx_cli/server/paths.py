"""Where the audiofx server lives: one private folder per user (and machine) holding its socket,
lock, log and job journals. Standard library only.

The folder is `$AUDIOFX_SERVER_DIR` when set, else `$XDG_RUNTIME_DIR/audiofx`, else
`~/.cache/audiofx/server-HOSTNAME` (the host name keeps machines that share a home folder from
taking each other's socket for a stale one). It must be a real folder (not a link) owned by
this user with no access for anyone else (mode 0700); `private_folder` creates it so and refuses
one that is not.
"""

from __future__ import annotations

import os
import stat

Folder = str | os.PathLike[str]  # a folder given as text or path
SOCKET_NAME = "server.sock"
LOCK_NAME = "server.lock"
LOG_NAME = "server.log"
JOURNAL_NAME = "jobs"
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL
# No pathlib here: the client imports this module on every command, and pathlib costs more
# than the rest of the client's imports together.


def server_dir(environ: dict[str, str] | None = None) -> str:
    """The server folder for this user (see the module docstring); not created here."""
    env = os.environ if environ is None else environ
    if env.get("AUDIOFX_SERVER_DIR"):
        return env["AUDIOFX_SERVER_DIR"]
    if env.get("XDG_RUNTIME_DIR"):
        return os.path.join(env["XDG_RUNTIME_DIR"], "audiofx")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "audiofx", f"server-{os.uname().nodename}")


def socket_path(folder: Folder) -> str:
    return os.path.join(folder, SOCKET_NAME)


def folder_problem(folder: Folder) -> str | None:
    """Why `folder` cannot hold the server (None when it can): it must be a folder, not a
    link, owned by this user, with no permissions for group or others."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return f"{folder} does not exist"
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if info.st_uid != os.geteuid():
        return f"{folder} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    if info.st_mode & 0o077:
        return f"{folder} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0700"
    if len(os.fsencode(socket_path(folder))) > SOCKET_PATH_MAX:
        return f"{socket_path(folder)} is longer than a Unix socket path may be"
    return None


def private_folder(folder: Folder) -> str | None:
    """Create `folder` with mode 0700 if it is missing; returns `folder_problem` after."""
    if not os.path.lexists(folder):
        try:
            os.makedirs(os.path.dirname(os.path.abspath(folder)), exist_ok=True)
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass  # another process made it meanwhile: checked below like any other
        except OSError as exc:
            return f"cannot create {folder}: {exc.strerror or exc}"
    return folder_problem(folder)
