"""Flags that also read environment variables, judged by the same rules either way.

`tui-collab` and `tui-collab-server` both take every setting as a flag or as a
`TUI_COLLAB_*` variable. A variable's value goes through the flag's own `type` and
`choices`, so a bad one fails exactly as the flag would, and the message names the
variable the person set.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

ENV_PREFIX: Final = "TUI_COLLAB_"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class EnvValueError(Exception):
    """An environment variable holds a value its flag would refuse; one line naming it."""


@dataclass(frozen=True)
class _FromEnv:
    """A flag's value taken from its environment variable, checked once parsing is done.

    argparse converts a string default with `type` (naming the flag, not the variable,
    when it fails) and never checks a default against `choices`; holding the raw text
    until `resolve_env` lets the flag's own `type` and `choices` judge it, for the
    subcommand that runs only.
    """

    name: str
    raw: str
    action: argparse.Action

    def __str__(self) -> str:
        return self.raw

    def value(self) -> Any:
        action = self.action
        shown = self.raw if self.raw.isprintable() else repr(self.raw)
        if action.nargs == 0:  # a switch such as --debug
            if self.raw.lower() in _TRUE:
                return action.const
            if self.raw.lower() in _FALSE:
                return action.default
            raise EnvValueError(f"{self.name}={shown}: invalid boolean value (use 1 or 0)")
        convert: Callable[[str], Any] = action.type or str  # type: ignore[assignment]
        try:
            value = convert(self.raw)
        except argparse.ArgumentTypeError as exc:
            raise EnvValueError(f"{self.name}={shown}: {exc}") from None
        except (TypeError, ValueError):
            kind = getattr(convert, "__name__", repr(convert))
            raise EnvValueError(f"{self.name}={shown}: invalid {kind} value") from None
        if action.choices is not None and value not in action.choices:
            allowed = ", ".join(map(str, action.choices))
            raise EnvValueError(f"{self.name}={shown}: invalid choice (choose from {allowed})")
        return value


def env_flag(
    parser: argparse._ActionsContainer,
    flag: str,
    *,
    environ: Mapping[str, str],
    help: str | None = None,
    variable: str | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """Add `--flag`, which also reads TUI_COLLAB_FLAG (set and not empty).

    One source of truth: the variable's value is judged by the flag's own `type` and
    `choices` in `resolve_env`, so a bad value fails as the flag would, naming the
    variable. A repeatable flag takes a comma-separated list. `variable` overrides the
    name after the prefix.
    """
    name = ENV_PREFIX + (variable or flag.upper().replace("-", "_"))
    shown = f"[env {name}]"
    action = parser.add_argument(f"--{flag}", help=f"{help} {shown}" if help else shown, **kwargs)
    raw = environ.get(name, "")
    if raw:
        if kwargs.get("action") == "append":
            action.default = [_FromEnv(name, part, action) for part in raw.split(",") if part]
        else:
            action.default = _FromEnv(name, raw, action)
    return action


def env_source(value: object) -> str | None:
    """The variable a parsed value still waiting for `resolve_env` came from, if any."""
    return value.name if isinstance(value, _FromEnv) else None


def resolve_env(args: argparse.Namespace) -> None:
    """Replace every value that came from the environment by the flag's conversion of it."""
    for dest, value in vars(args).items():
        if isinstance(value, _FromEnv):
            setattr(args, dest, value.value())
        elif isinstance(value, list):
            setattr(args, dest, [v.value() if isinstance(v, _FromEnv) else v for v in value])


def port(text: str) -> int:
    """A TCP port number; 0 asks the system for a free one."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value}: use 0 to 65535")
    return value
