"""The client's config file: what a person would otherwise type on every launch.

`config.toml` in the user's config dir (`~/.config/tui-collab/` on Linux), or the file
named by `--config PATH` or TUI_COLLAB_CONFIG. Its keys are flat and named like the
flags (`token_command` for `--token-command`). A setting comes from the first of: a flag,
an environment variable, the file, the built-in default. The three token settings are
one choice: the highest of those layers that names any of them wins whole, so a
`--token` on the command line is not overruled by a `token_command` in the file.
"""

from __future__ import annotations

import argparse
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from platformdirs import user_config_dir

from tui_collab.envflags import ENV_PREFIX, env_source, resolve_env

CONFIG_ENV: Final = ENV_PREFIX + "CONFIG"
FILE_NAME: Final = "config.toml"
TOKEN_DESTS: Final = ("token", "token_command", "token_file")
"""One choice: where the token comes from."""


class ConfigError(Exception):
    """The config file cannot be used or written; one line naming the file and the key."""


def default_config_path() -> Path:
    """Where the config file lives unless `--config` or TUI_COLLAB_CONFIG says otherwise."""
    return Path(user_config_dir("tui-collab", appauthor=False)) / FILE_NAME


# --- values -----------------------------------------------------------------------


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", list: "an array"}
    return names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def _text(value: object, base: Path) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_toml_type(value)}")
    if not value.strip():
        raise ValueError("is empty: remove the key to use the default")
    return value


def _url(value: object, base: Path) -> str:
    text = _text(value, base)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"{text!r} is not a ws:// or wss:// URL")
    return text


def _path(value: object, base: Path) -> Path:
    """`~` is the home directory; a relative path is relative to the config file."""
    return base / Path(_text(value, base)).expanduser()


def theme_names() -> list[str]:
    """The themes the app can show: Textual's built-in ones."""
    from textual.theme import BUILTIN_THEMES

    return sorted(BUILTIN_THEMES)


def theme_name(text: str) -> str:
    """A theme the app knows (the `--theme` flag's type)."""
    names = theme_names()
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown theme {text!r} (choose from {', '.join(names)})")
    return text


def _theme(value: object, base: Path) -> str:
    try:
        return theme_name(_text(value, base))
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Key:
    """A key the file may set: the flag's `dest` it stands for, and how it is checked."""

    dest: str
    convert: Callable[[object, Path], Any]


FILE_KEYS: Final[dict[str, Key]] = {
    "server": Key("server", _url),
    "user": Key("user", _text),
    "team": Key("team", _text),
    "name": Key("name", _text),
    "token_command": Key("token_command", _text),
    "token_file": Key("token_file", _path),
    "cafile": Key("cafile", _path),
    "board": Key("board", _text),
    "theme": Key("theme", _theme),
    "data_dir": Key("data_dir", _path),
}
REFUSED_KEYS: Final = {
    "token": "a token is not kept in the config file: use token_file or token_command",
}


# --- reading ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    """The file's checked values, by flag `dest`; `found` False: no file, defaults apply."""

    path: Path
    named_by: str
    """'--config', 'TUI_COLLAB_CONFIG' or 'default'."""
    found: bool
    values: dict[str, Any] = field(default_factory=dict)


def locate(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[Path, str]:
    """The config file's path and what named it, before the command line is parsed
    (its values are the parser's defaults)."""
    early = argparse.ArgumentParser(prog="tui-collab", add_help=False)
    early.add_argument("--config", type=Path)
    known, _ = early.parse_known_args(argv)
    if known.config is not None:
        return known.config.expanduser().absolute(), "--config"
    named = environ.get(CONFIG_ENV, "")
    if named:
        return Path(named).expanduser().absolute(), CONFIG_ENV
    return default_config_path(), "default"


def load(path: Path, named_by: str = "default") -> ConfigFile:
    """Read and check the file. A missing default file is no error; a missing file that
    was named is, as is any key or value the app would not use."""
    import tomllib

    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if named_by == "default":
            return ConfigFile(path, named_by, found=False)
        raise ConfigError(f"config file {path} (from {named_by}) does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return ConfigFile(path, named_by, found=True, values=check(document, path))


def check(document: Mapping[str, object], path: Path) -> dict[str, Any]:
    """The document's values by `dest`; the first bad key raises, naming file and key."""
    values: dict[str, Any] = {}
    for key, raw in document.items():
        if key in REFUSED_KEYS:
            raise ConfigError(f"{path}: {key}: {REFUSED_KEYS[key]}")
        spec = FILE_KEYS.get(key)
        if spec is None:
            known = ", ".join(FILE_KEYS)
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {known})")
        try:
            values[spec.dest] = spec.convert(raw, path.parent)
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None
    if "token_command" in values and "token_file" in values:
        raise ConfigError(f"{path}: token_command, token_file: set one of them, not both")
    return values


# --- where each setting comes from -------------------------------------------------

LAYERS: Final = ("default", "file", "env", "flag")
"""Lowest first: a later layer overrides an earlier one."""


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from: the layer and what in it ('--board',
    'TUI_COLLAB_BOARD', the file's path); `unused`: why a token setting was set aside."""

    layer: str
    detail: str = ""
    unused: str = ""

    @property
    def rank(self) -> int:
        return LAYERS.index(self.layer)

    def __str__(self) -> str:
        where = {
            "default": "default",
            "file": "config file",
            "env": f"env {self.detail}",
            "flag": f"flag {self.detail}",
        }[self.layer]
        return f"{where} (not used: {self.unused})" if self.unused else where


@dataclass(frozen=True)
class Settings:
    """The parsed command line with every layer applied, and each value's source."""

    args: argparse.Namespace
    sources: dict[str, Source]
    config: ConfigFile
    set_aside: dict[str, Any] = field(default_factory=dict)
    """Token settings a higher layer overruled, with their values (for `describe`)."""


def settle(
    make_parser: Callable[[Mapping[str, str]], argparse.ArgumentParser],
    argv: Sequence[str] | None,
    environ: Mapping[str, str],
) -> Settings:
    """Parse `argv` with the file's values under the environment's, under the flags'.

    Raises ConfigError for a bad file, EnvValueError for a bad variable; argparse exits
    for a bad flag, as ever.
    """
    config = load(*locate(argv, environ))
    parser = make_parser(environ)
    for action in _actions(parser):
        value = config.values.get(action.dest)
        # A variable beats the file (SUPPRESS: nothing there to replace).
        keep = action.default is argparse.SUPPRESS or env_source(action.default) is not None
        if value is not None and not keep:
            action.default = value
    args = parser.parse_args(argv)
    flags = _flags_given(make_parser({}), argv)
    sources: dict[str, Source] = {}
    for dest, value in vars(args).items():
        variable = env_source(value)
        if dest in flags:
            sources[dest] = Source("flag", flags[dest])
        elif variable is not None:
            sources[dest] = Source("env", variable)
        elif dest in config.values:
            sources[dest] = Source("file", str(config.path))
        else:
            sources[dest] = Source("default")
    resolve_env(args)
    return Settings(args, sources, config, _one_token_source(args, sources))


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every action of the parser and of its subcommands' parsers."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _actions(sub)


def _flags_given(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict[str, str]:
    """The dests `argv` sets, each with its flag: parsed again with no defaults at all."""
    names: dict[str, str] = {}
    for action in _actions(parser):
        action.default = argparse.SUPPRESS
        if action.option_strings:
            names.setdefault(action.dest, max(action.option_strings, key=len))
    given = vars(parser.parse_args(argv))
    return {dest: names[dest] for dest in given if dest in names}


def _one_token_source(args: argparse.Namespace, sources: dict[str, Source]) -> dict[str, Any]:
    """The highest layer naming a token source decides; lower ones are set aside (and
    returned, with their values)."""
    named = [dest for dest in TOKEN_DESTS if getattr(args, dest, None) is not None]
    set_aside: dict[str, Any] = {}
    if not named:
        return set_aside
    best = max(named, key=lambda dest: sources[dest].rank)
    top = sources[best]
    for dest in named:
        if sources[dest].rank < top.rank:
            set_aside[dest] = getattr(args, dest)
            setattr(args, dest, None)
            sources[dest] = Source(
                sources[dest].layer, sources[dest].detail, unused=f"{top} sets the token"
            )
    return set_aside


# --- `tui-collab config` -------------------------------------------------------------

SHOWN: Final = (
    "server",
    "token",
    "token_command",
    "token_file",
    "user",
    "team",
    "name",
    "cafile",
    "board",
    "theme",
    "data_dir",
    "port",
    "demo",
    "debug",
)
"""What `tui-collab config` lists, in this order."""
WHEN_UNSET: Final = {
    "server": "(none: a local server in this process)",
    "user": "(the login name)",
    "team": "local",
    "theme": "textual-dark",
}
"""What an unset setting means, where that is not just 'not set'."""


def describe(settings: Settings) -> str:
    """The effective settings, one a line, with where each came from; a token's value
    is never shown, only whether one is set."""
    config = settings.config
    named = "" if config.named_by == "default" else f", named by {config.named_by}"
    state = "read" if config.found else "not found: built-in defaults apply"
    lines = [f"config file: {config.path} ({state}{named})", ""]
    shown = [dest for dest in SHOWN if hasattr(settings.args, dest)]
    width = max(len(dest) for dest in shown)
    for dest in shown:
        value = settings.set_aside.get(dest, getattr(settings.args, dest))
        lines.append(f"{dest.ljust(width)}  {_shown(dest, value)}  [{settings.sources[dest]}]")
    return "\n".join(lines)


def _shown(dest: str, value: object) -> str:
    if dest == "token":
        return "(set, not shown)" if value else "(not set)"
    if value is None:
        return WHEN_UNSET.get(dest, "(not set)")
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return text if text.isprintable() else repr(text)
