"""Writing files whole or not at all: the one writer for every file the project makes.

A kill, a crash or a full disk leaves the old file or none, never half of one. The bytes
go to a unique temporary in the target's folder (created exclusively, so a link planted
under that name is never followed), are synced to disk, and the temporary is renamed
over the target; the folder is then synced so that the rename itself survives a crash.

A target that is not a regular file is never replaced by one: standard output (`-`), a
named pipe or a character device is written to as a stream (whole-or-nothing cannot hold
there), and a folder or any other kind of file is refused with an error naming it. A
name under the system's device and process folders (`/dev/stdout`, `/proc/self/fd/1`)
is always a stream, whatever it leads to, and is never created. A write that fails (a
full disk, a device that refuses, a closed pipe) is one `WriteError` naming the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Literal, overload

from concordia_like.errors import ConcordiaError, ConfigError

STDOUT = "-"
#: folders whose names are streams or kernel objects, never files this project makes
SYSTEM_FOLDERS = ("/dev/", "/proc/")
FILE_MODE = 0o644  # what a plain open makes under the usual umask (mkstemp makes 0600)
FOLDER_MODE = 0o755  # likewise for a folder (mkdtemp makes 0700)


class WriteError(ConcordiaError):
    """A target that could not be written: the message names it and the system's reason."""


@contextlib.contextmanager
def _reported(path: str | Path) -> Iterator[None]:
    """An OSError while writing `path` as one WriteError naming it."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise WriteError(f"cannot write {path}: {reason}") from None


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable; a file system that cannot sync a folder is
    left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_stream(path: str | Path) -> bool:
    """Whether writing `path` means streaming to it: standard output, a named pipe, a
    character device (followed through links) or an existing name under the system's
    folders (`/dev/stdout` may lead to a regular file, which is still the shell's). Raises
    ConfigError for a folder, another kind of file, or a new name under those folders."""
    if str(path) == STDOUT:
        return True
    system = os.path.abspath(path).startswith(SYSTEM_FOLDERS)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if system:
            raise ConfigError(f"{path}: no such device; name a file to write") from None
        return False
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written ({exc.strerror})") from None
    if stat.S_ISREG(mode) and not system:
        return False
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or (system and stat.S_ISREG(mode)):
        return True
    what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    raise ConfigError(f"{path}: is {what}; name a file to write")


@contextlib.contextmanager
def _stream(path: str | Path, binary: bool) -> Iterator[IO]:
    if str(path) == STDOUT:
        out = sys.stdout.buffer if binary else sys.stdout
        yield out
        out.flush()
        return
    with open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
        yield f


@overload
def atomic_writer(
    path: str | Path, *, binary: Literal[False] = ...
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_writer(
    path: str | Path, *, binary: Literal[True]
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
def atomic_writer(
    path: str | Path, *, binary: bool = False
) -> contextlib.AbstractContextManager[IO[str]] | contextlib.AbstractContextManager[IO[bytes]]:
    """A file object whose contents become `path` when the block ends without an error
    (UTF-8 text, or bytes with `binary`); an error leaves `path` as it was. For large
    outputs written piece by piece; streams as the module says."""
    return _atomic_writer(path, binary)


@contextlib.contextmanager
def _atomic_writer(path: str | Path, binary: bool) -> Iterator[IO]:
    with _reported(path):
        if is_stream(path):
            with _stream(path, binary) as f:
                yield f
            return
        with (
            _temporary(Path(path)) as (fd, _),
            os.fdopen(
                os.dup(fd), "wb" if binary else "w", encoding=None if binary else "utf-8"
            ) as f,
        ):
            yield f


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) as the whole of `path`, or leave `path` as it was."""
    if isinstance(data, bytes):
        with atomic_writer(path, binary=True) as f:
            f.write(data)
    else:
        with atomic_writer(path) as f:
            f.write(data)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """The name of a fresh empty temporary beside `path` for a tool that writes a file by
    name; when the block ends without an error it is synced and renamed to `path`, and on
    an error it is removed. `path` must be a regular file or not exist yet."""
    with _reported(path):
        if is_stream(path):
            raise ConfigError(f"{path}: is not a regular file; name a file to write")
        with _temporary(Path(path)) as (_, tmp):
            yield tmp


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[tuple[int, Path]]:
    """A temporary beside `path`, created exclusively (a link planted at its name makes
    another name be drawn, never followed), as its open descriptor and its name; renamed
    to `path` after a sync when the block ends without an error, removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(name)
    try:
        try:
            yield fd, tmp
        finally:
            os.close(fd)
        # a tool writing by name may have made a new file there: sync what is there now,
        # never through a link
        synced = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(synced)
            os.fchmod(synced, FILE_MODE)
        finally:
            os.close(synced)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


@contextlib.contextmanager
def atomic_folder(
    path: str | Path, *, writes: Collection[str] = (), replace: bool = True
) -> Iterator[Path]:
    """A fresh temporary folder beside `path` to fill; when the block ends without an
    error it is renamed to `path`, and on an error it is removed. A folder already at
    `path` is replaced with `replace`, but only one that `check_replaceable` allows (it
    holds nothing but the names in `writes`): that is checked before the block runs and
    again before the folder goes. Without `replace`, the one there is kept and this one
    dropped (another process made the same folder first, as a cache does)."""
    if replace:
        check_replaceable(path, writes)
    with _reported(path), _folder(Path(path), replace, writes) as tmp:
        yield tmp


def check_replaceable(
    path: str | Path, writes: Collection[str], *, risk: str = "the folder would be replaced whole"
) -> None:
    """Refuses (ConfigError) to take over `path` where that would take anything its
    writer did not write: a folder holding an entry not named in `writes` (the names the
    writer puts there, so all that an earlier run of it leaves), a file or link, or the
    folder the command runs in or one above it. `risk` says what taking it over would
    do. A mistyped output folder must never remove a user's files; commands call this
    before their long work, so they fail at once."""
    p = Path(path)
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        raise ConfigError(f"{p}: is not a folder; name a folder to write")
    if not p.exists():
        return
    here, full = Path.cwd().resolve(), p.resolve()
    if full == here or full in here.parents:
        raise ConfigError(
            f"{p}: is the folder this command runs in, or holds it, and {risk}; name a new folder"
        )
    foreign = sorted(e.name for e in p.iterdir() if e.name not in writes)
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ConfigError(
            f"{p}: holds {', '.join(foreign[:3])}{more}, which this command does not "
            f"write, and {risk}; name a new folder, or one it wrote before"
        )


@contextlib.contextmanager
def _folder(path: Path, replace: bool, writes: Collection[str]) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, FOLDER_MODE)
        if replace:  # what is there may have changed while the block ran
            check_replaceable(path, writes)
        elif path.is_symlink() or path.is_file():
            raise ConfigError(f"{path}: is not a folder; name a folder to write")
        if path.exists():
            if not replace:
                shutil.rmtree(tmp, ignore_errors=True)
                return
            shutil.rmtree(path)
        try:
            os.replace(tmp, path)
        except OSError:
            if replace or not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # made by another process meanwhile
            return
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _sync_folder(path.parent)
