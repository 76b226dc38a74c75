"""The client's config file: each kind of setting from the file, the environment and a
flag, in that order of strength; and every bad file refused, naming the file and key.

The real parser (`tui_collab.cli.build_parser`) reads real files in a temporary
directory; the environment is the mapping the command line would be given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_collab.cli import build_parser
from tui_collab.config import CONFIG_ENV, ConfigError, Settings, default_config_path, settle
from tui_collab.envflags import EnvValueError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    return settle(build_parser, argv, environ or {})


# Each kind: (file key, flag, variable, a value for each layer, what the value becomes).
KINDS = [
    ("server", "--server", "TUI_COLLAB_SERVER", ("ws://f:1/ws", "ws://e:2/ws", "ws://g:3/ws")),
    ("board", "--board", "TUI_COLLAB_BOARD", ("from-file", "from-env", "from-flag")),
    ("user", "--user", "TUI_COLLAB_USER_ID", ("file-user", "env-user", "flag-user")),
    ("theme", "--theme", "TUI_COLLAB_THEME", ("nord", "gruvbox", "dracula")),
    ("cafile", "--cafile", "TUI_COLLAB_CAFILE", ("/f/ca.pem", "/e/ca.pem", "/g/ca.pem")),
    ("data_dir", "--data-dir", "TUI_COLLAB_DATA_DIR", ("/f/data", "/e/data", "/g/data")),
]


@pytest.mark.parametrize(("key", "flag", "variable", "values"), KINDS, ids=[k[0] for k in KINDS])
def test_file_then_environment_then_flag(
    tmp_path: Path, key: str, flag: str, variable: str, values: tuple[str, str, str]
) -> None:
    in_file, in_env, in_flag = values
    config = write(tmp_path / "config.toml", f'{key} = "{in_file}"\n')
    base = ["--config", str(config)]

    def value(settings: Settings) -> str:
        return str(getattr(settings.args, key))

    only_file = run(base)
    assert value(only_file) == in_file
    assert only_file.sources[key].layer == "file"
    env_over_file = run(base, {variable: in_env})
    assert value(env_over_file) == in_env
    assert str(env_over_file.sources[key]) == f"env {variable}"
    flag_over_all = run([*base, flag, in_flag], {variable: in_env})
    assert value(flag_over_all) == in_flag
    assert str(flag_over_all.sources[key]) == f"flag {flag}"
    empty = write(tmp_path / "empty.toml", "")
    assert run(["--config", str(empty)]).sources[key].layer == "default"


def test_the_file_applies_to_the_subcommands_too(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", 'server = "ws://team:9001/ws"\nteam = "core"\n')
    settings = run(["who", "--config", str(config)])
    assert (settings.args.server, settings.args.team) == ("ws://team:9001/ws", "core")
    settings = run(["export", "plan"], {CONFIG_ENV: str(config)})
    assert settings.args.server == "ws://team:9001/ws"


def test_relative_paths_are_relative_to_the_file_and_tilde_is_home(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", 'cafile = "ca.pem"\ntoken_file = "~/token"\n')
    args = run(["--config", str(config)]).args
    assert args.cafile == tmp_path / "ca.pem"
    assert args.token_file == Path.home() / "token"


def test_a_token_on_a_higher_layer_sets_aside_the_files_token_command(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", 'token_command = "pass show collab"\n')
    base = ["--config", str(config)]
    assert run(base).args.token_command == "pass show collab"
    by_env = run(base, {"TUI_COLLAB_TOKEN": "t-env"})
    assert (by_env.args.token, by_env.args.token_command) == ("t-env", None)
    assert by_env.sources["token_command"].unused == "env TUI_COLLAB_TOKEN sets the token"
    assert by_env.set_aside == {"token_command": "pass show collab"}
    by_flag = run([*base, "--token-file", "/run/token"], {"TUI_COLLAB_TOKEN": "t-env"})
    assert (by_flag.args.token, by_flag.args.token_command) == (None, None)
    assert by_flag.args.token_file == Path("/run/token")


def test_the_default_file_is_in_the_users_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "tui-collab" / "config.toml"
    absent = run([])
    assert (absent.config.found, absent.config.named_by) == (False, "default")
    (tmp_path / "tui-collab").mkdir()
    write(tmp_path / "tui-collab" / "config.toml", 'board = "standup"\n')
    found = run([])
    assert found.config.found
    assert found.args.board == "standup"


BAD_FILES = [
    ('sever = "ws://x:1/ws"\n', "unknown key 'sever' (known keys: server, user,"),
    ('server = "http://x:1/"\n', "server: 'http://x:1/' is not a ws:// or wss:// URL"),
    ("board = 7\n", "board: expected a string, got an integer"),
    ('user = ""\n', "user: is empty: remove the key to use the default"),
    ('theme = "nrod"\n', "theme: unknown theme 'nrod' (choose from "),
    ('token = "eyJ"\n', "token: a token is not kept in the config file: use token_file or"),
    ('[server]\nurl = "ws://x:1/ws"\n', "server: expected a string, got a table"),
    ("[colors]\ngrid = 1\n", "unknown key 'colors' (known keys:"),
    ('board = "a"\nboard = "b"\n', "not valid TOML: Cannot overwrite a value (at line 2"),
    ('token_command = "a"\ntoken_file = "b"\n', "token_command, token_file: set one of them"),
]


@pytest.mark.parametrize(("text", "said"), BAD_FILES)
def test_a_bad_file_names_itself_and_the_key(tmp_path: Path, text: str, said: str) -> None:
    config = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as caught:
        run(["--config", str(config)])
    message = str(caught.value)
    assert message.startswith(f"{config}: "), message
    assert said in message


def test_a_named_file_that_is_missing_or_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml \(from --config\) does not exist"):
        run(["--config", str(missing)])
    with pytest.raises(ConfigError, match=rf"nope\.toml \(from {CONFIG_ENV}\) does not exist"):
        run([], {CONFIG_ENV: str(missing)})
    with pytest.raises(ConfigError, match=r"cannot read config file .*: Is a directory"):
        run(["--config", str(tmp_path)])
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'board = "\xff"\n')
    with pytest.raises(ConfigError, match=r"binary\.toml: not UTF-8 text \(byte 9\)"):
        run(["--config", str(binary)])


def test_a_bad_theme_variable_is_refused_like_the_flag() -> None:
    with pytest.raises(EnvValueError, match="TUI_COLLAB_THEME=nrod: unknown theme 'nrod'"):
        run([], {"TUI_COLLAB_THEME": "nrod"})
    with pytest.raises(SystemExit):
        run(["--theme", "nrod"])
