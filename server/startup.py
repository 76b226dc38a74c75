"""Why a server cannot start, as one line an operator can act on.

Every check that can stop a start-up lives here and raises `StartupError`, whose text
names the path or address and says what to do. The command line prints that text and
nothing else (no traceback unless `--debug`); the app's embedded server can show the
same text. Nothing here knows about argparse, so any caller may use these helpers.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sqlite3
import ssl
from pathlib import Path
from typing import Final

from tui_collab.private_files import DIR_MODE, make_private_dir

logger = logging.getLogger(__name__)

BACKUP_HOWTO: Final = 'sqlite3 tui-collab.sqlite3 ".backup copy.sqlite3"'
_DAMAGED: Final = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


class StartupError(Exception):
    """A start-up failure the operator can fix; `str()` is the whole one-line message."""


class ListenError(StartupError, OSError):
    """The port cannot be bound. Also an `OSError`, so callers that fall back to another
    port on `OSError` (the app's embedded server) keep working."""


SECRET_MIN_BYTES: Final = 32
_warned_wide: set[Path] = set()


def check_data_dir(path: Path, *, writable: bool = True, warn: bool = True) -> Path:
    """Create the data dir (mode 0700) if it is missing; refuse one that is not a usable
    directory; warn (`warn_if_wide`) about an existing one others may enter."""
    if path.exists() and not path.is_dir():
        raise StartupError(
            f"data dir {path} is not a directory: pass --data-dir a directory "
            "(or move that file away)"
        )
    try:
        if not make_private_dir(path) and warn:
            warn_if_wide(path)
    except OSError as exc:
        raise StartupError(
            f"cannot create data dir {path} ({_reason(exc)}): create it yourself, or pass "
            "--data-dir a directory this user can write to"
        ) from exc
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise StartupError(
            f"data dir {path} is not writable by this user: fix its permissions, or pass "
            "--data-dir a directory this user can write to"
        )
    return path


def warn_if_wide(path: Path) -> None:
    """One warning line, once per process, for a data dir that group or others may use;
    the directory is left as it is (it is the operator's)."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if os.name != "posix" or not mode & ~DIR_MODE or path in _warned_wide:
        return
    _warned_wide.add(path)
    logger.warning(
        "data dir %s has mode %04o, so other users may read its files: run chmod 700 %s "
        "(new data dirs are made 0700)",
        path,
        mode,
        path,
    )


def read_secret_file(path: Path) -> str:
    """The signing secret stored at `path`, which exists.

    Refused, as ssh refuses a private key, when group or others have any access to it,
    and when it holds fewer than 32 bytes (a short secret can be guessed offline from
    any one token).
    """
    try:
        mode = path.stat().st_mode & 0o777
        secret = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(
            f"cannot read the signing secret {path} ({_reason(exc)}): fix its permissions, "
            "or set TUI_COLLAB_SECRET"
        ) from exc
    if os.name == "posix" and mode & 0o077:
        raise StartupError(
            f"the signing secret {path} has mode {mode:04o}, open to other users: run "
            f"chmod 600 {path}"
        )
    if not secret:
        raise StartupError(
            f"the signing secret {path} is empty: delete it and a new one is made "
            "(tokens signed with an older secret stop working)"
        )
    size = len(secret.encode())
    if size < SECRET_MIN_BYTES:
        raise StartupError(
            f"the signing secret {path} is too short ({size} bytes, at least "
            f"{SECRET_MIN_BYTES}): delete it and a new one is made (tokens signed with "
            "the old secret stop working)"
        )
    return secret


def check_database(path: Path) -> int | None:
    """Read-only look at an existing database: its `user_version`, or None if absent.

    Runs before anything opens the file for writing (WAL mode, migrations), so a
    damaged file is refused exactly as it was found; a restore needs it untouched.
    """
    if not path.exists():
        return None
    if not path.is_file():
        raise StartupError(f"database {path} is not a file: move it aside and start again")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _unreadable_database(path, exc) from exc
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorname", "") in _DAMAGED:
            raise damaged_database(path, str(exc)) from exc
        raise _unreadable_database(path, exc) from exc
    finally:
        db.close()
    if problems != ["ok"]:
        raise damaged_database(path, problems[0])
    return version


def damaged_database(path: Path, detail: str) -> StartupError:
    return StartupError(
        f"database {path} is damaged ({detail}) and was left untouched: move it and any "
        f"-wal and -shm files next to it aside, then copy your latest backup to {path} "
        f"(backups are made with {BACKUP_HOWTO})"
    )


def _unreadable_database(path: Path, exc: sqlite3.Error) -> StartupError:
    return StartupError(
        f"cannot read database {path} ({exc}): check that this user may read and write it "
        "and its directory"
    )


def cannot_open_database(path: Path, exc: BaseException) -> StartupError:
    """The read-only check passed but opening for writing failed (permissions, disk)."""
    return StartupError(
        f"cannot open database {path} for writing ({_reason(exc)}): check its permissions "
        "and the free disk space"
    )


def load_tls(certfile: Path, keyfile: Path | None) -> ssl.SSLContext:
    """A server TLS context, or a `StartupError` naming the file that is wrong."""
    cert_text = _read_pem(certfile, "certificate", "--certfile")
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise StartupError(
            f"TLS certificate {certfile} is not a PEM certificate (no BEGIN CERTIFICATE "
            "line): pass --certfile the PEM file of the certificate"
        )
    if keyfile is None:
        if "PRIVATE KEY-----" not in cert_text:
            raise StartupError(
                f"TLS certificate {certfile} holds no private key: pass --keyfile the PEM "
                "file of its key"
            )
    elif "PRIVATE KEY-----" not in _read_pem(keyfile, "key", "--keyfile"):
        raise StartupError(
            f"TLS key {keyfile} is not a PEM private key: pass --keyfile the PEM file of "
            "the certificate's key"
        )
    key_path = keyfile or certfile

    def no_passphrase() -> str:
        # Without this, OpenSSL would prompt on the terminal and a service would hang.
        raise StartupError(
            f"TLS key {key_path} is encrypted: give an unencrypted key "
            "(openssl pkey -in KEY -out PLAIN)"
        )

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile, password=no_passphrase)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if reason == "KEY_VALUES_MISMATCH":
            reason = "the key does not belong to the certificate"
        raise StartupError(
            f"cannot use TLS certificate {certfile} with key {key_path}: {reason}: pass the "
            "certificate and its own key"
        ) from exc
    return context


def _read_pem(path: Path, what: str, flag: str) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError as exc:
        raise StartupError(
            f"TLS {what} {path} does not exist: pass {flag} the PEM file of the {what}"
        ) from exc
    except OSError as exc:
        raise StartupError(f"cannot read TLS {what} {path} ({_reason(exc)})") from exc


def listen_error(host: str, port: int, exc: OSError) -> ListenError:
    """The bind failed: say why in words and what to change."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        text = f"unknown host ({exc.strerror}): pass --host an address of this machine"
    elif exc.errno == errno.EADDRINUSE:
        text = (
            "the address is already in use: stop whatever listens there, or pass --port "
            "another port (0 picks a free one)"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        text = "no such address on this machine: pass --host one of its addresses"
    elif exc.errno == errno.EACCES:
        text = "permission denied: ports below 1024 need privileges; pass --port 1024 or above"
    else:
        text = _reason(exc)
    return ListenError(f"cannot listen on {where}: {text}")


def redis_error(url: str, exc: BaseException) -> StartupError:
    """Redis could not be used at start-up; `url` must already have its password masked."""
    # Imported here: the SQLite-only server needs no redis package loaded at start-up.
    from redis.exceptions import AuthenticationError, ResponseError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, AuthenticationError | ResponseError):
        return StartupError(
            f"Redis at {url} refused us ({exc}): put the right password in the URL "
            "(redis://:PASSWORD@HOST:6379/0) and check the database number"
        )
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(exc, RedisTimeoutError) or isinstance(cause, TimeoutError):
            reason = "it did not answer in time"
        elif isinstance(cause, OSError):
            reason = _reason(cause)
        else:
            reason = str(exc)
        return StartupError(
            f"cannot reach Redis at {url} ({reason}): start Redis there, or pass --redis "
            "the URL of one that runs"
        )
    return StartupError(f"cannot use Redis at {url} ({exc}): check the --redis URL")


def _reason(exc: BaseException) -> str:
    """An OSError's words without the errno and repeated path; others as they print."""
    if isinstance(exc, OSError):
        if isinstance(exc.errno, int) and exc.errno > 0:
            return os.strerror(exc.errno).lower()
        if exc.strerror:
            return str(exc.strerror)
    return str(exc) or type(exc).__name__
