"""Presets: the chain files shipped in the package and a person's own (torch-free).

User presets live in `$XDG_CONFIG_HOME/audiofx/presets` (`~/.config/audiofx/presets` when
XDG_CONFIG_HOME is unset), or in the folders `AUDIOFX_PRESETS` lists (separated by ':'; the
first is where `save` writes). Both are read when a name is looked up, not at import, so a
command served by the warm server sees the caller's environment.

A user preset never shadows a shipped one silently: `save` refuses a shipped name, and a name
found in both places (a file copied there by hand) is an error that asks for `preset:NAME` or
`user:NAME`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from audiofx_cli.chain.registry import suggest
from audiofx_cli.errors import OutputExistsError, UsageError
from audiofx_cli.io.temp import write_text_atomic

PRESET_SUFFIX = ".yaml"
SHIPPED_PREFIX = "preset:"
USER_PREFIX = "user:"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Preset:
    """A preset file: its name, where it is, and whether it ships with audiofx."""

    name: str
    path: Path
    shipped: bool

    @property
    def label(self) -> str:
        """How error messages and reports name it: preset:NAME or user:NAME."""
        return f"{SHIPPED_PREFIX if self.shipped else USER_PREFIX}{self.name}"


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "presets"


def user_dirs(environ: dict[str, str] | None = None) -> list[Path]:
    """The folders user presets are read from, in order (the first is written to)."""
    env = os.environ if environ is None else environ
    listed = env.get("AUDIOFX_PRESETS", "")
    if listed.strip():
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p.strip()]
    config = env.get("XDG_CONFIG_HOME", "").strip() or os.path.join(
        env.get("HOME", "") or os.path.expanduser("~"), ".config"
    )
    return [Path(config) / "audiofx" / "presets"]


def _in(folder: Path, shipped: bool) -> dict[str, Preset]:
    try:
        paths = sorted(folder.glob(f"*{PRESET_SUFFIX}"))
    except OSError:
        return {}
    return {
        p.stem: Preset(p.stem, p, shipped)
        for p in paths
        if NAME_PATTERN.match(p.stem) and p.is_file()
    }


def shipped_presets() -> dict[str, Preset]:
    return _in(shipped_dir(), shipped=True)


def user_presets() -> dict[str, Preset]:
    """User presets by name; a name in two folders is the first folder's."""
    found: dict[str, Preset] = {}
    for folder in user_dirs():
        for name, preset in _in(folder, shipped=False).items():
            found.setdefault(name, preset)
    return found


def all_presets() -> list[Preset]:
    """Shipped presets, then user presets, each sorted by name (clashing names appear twice)."""
    return [*shipped_presets().values(), *user_presets().values()]


def preset_names() -> list[str]:
    return sorted({p.name for p in all_presets()})


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"preset name '{name}' is not allowed: letters, digits, '_', '.', '-' "
            "(up to 64, starting with a letter or digit)"
        )


def find_preset(text: str) -> Preset:
    """The preset `text` names: NAME, preset:NAME (shipped) or user:NAME.

    Raises:
        UsageError: no such preset, or NAME is both shipped and a user preset.
    """
    shipped, user = shipped_presets(), user_presets()
    if text.startswith(SHIPPED_PREFIX):
        name, pool = text[len(SHIPPED_PREFIX) :], shipped
    elif text.startswith(USER_PREFIX):
        name, pool = text[len(USER_PREFIX) :], user
    else:
        name, pool = text, {**user, **shipped}
        if name in shipped and name in user:
            raise UsageError(
                f"preset '{name}' is both shipped with audiofx and a user preset "
                f"({user[name].path}); say which: --chain preset:{name} or --chain user:{name}"
            )
    if name in pool:
        return pool[name]
    names = sorted(pool)
    where = "" if pool is not user else f" in {os.pathsep.join(map(str, user_dirs()))}"
    raise UsageError(
        f"no chain file or preset named '{text}'{suggest(name, names)}; presets{where}: "
        + (", ".join(names) or "none")
    )


def save_preset(name: str, text: str, overwrite: bool = False) -> Path:
    """Write `text` (an already validated chain) as user preset `name`, atomically.

    Raises:
        UsageError: a bad or shipped name, or the folder cannot be made.
        OutputExistsError: the user preset exists and `overwrite` is False.
    """
    check_name(name)
    if name in shipped_presets():
        raise UsageError(
            f"'{name}' is a shipped preset; a user preset may not shadow it (choose another name)"
        )
    folder = user_dirs()[0]
    target = folder / f"{name}{PRESET_SUFFIX}"
    if target.exists() and not overwrite:
        raise OutputExistsError(f"user preset '{name}' exists ({target}); --force replaces it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def remove_preset(name: str) -> Path:
    """Delete user preset `name` (a `user:` prefix is allowed); shipped ones cannot be removed.

    Raises:
        UsageError: no such user preset, or it is a shipped one.
    """
    bare = name.removeprefix(USER_PREFIX)
    user = user_presets()
    if bare not in user:
        if bare in shipped_presets():
            raise UsageError(f"'{bare}' is a shipped preset; only user presets can be removed")
        raise UsageError(
            f"no user preset named '{bare}'{suggest(bare, sorted(user))} "
            f"(in {os.pathsep.join(map(str, user_dirs()))})"
        )
    path = user[bare].path
    try:
        path.unlink()
    except OSError as exc:
        raise UsageError(f"cannot remove {path}: {exc.strerror or exc}") from None
    return path
