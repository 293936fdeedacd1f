"""Writing files so that a crash never leaves one half-written, and reading the files a
user controls without letting them hang or exhaust the process.

Rule: every file IDSP owns is written here — to a temp file in the same folder, flushed
and fsynced, then renamed over the target (``os.replace`` is atomic on POSIX). The old
content stays intact until the new content is complete. Every file a case member or user
can write (case.yaml, the checklist files, platform.yaml, DVC records, evidence) is read
through ``read_limited`` / ``load_yaml``: a regular file only (never a FIFO, a device or a
folder, also not through a link), at most a size cap per kind of file, and YAML with a
bounded number of aliases, of nodes after alias expansion and of nesting levels, so an
alias bomb is refused at once instead of being expanded. Errors name the file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from idsp.errors import UserError

MIB = 1024 * 1024
# Caps per kind of file: far above any honest file, far below what hurts a process.
SIZE_LIMITS: dict[str, int] = {
    "case": 1 * MIB,  # case.yaml
    "config": 1 * MIB,  # platform.yaml
    "checklist": 8 * MIB,  # ethics/checklist.yaml (a few hundred kB)
    "answers": 8 * MIB,
    "review": 16 * MIB,  # grows with every signed decision
    "registry": 4 * MIB,
    "catalogue": 16 * MIB,
    "dvc": 4 * MIB,  # <dataset>.dvc, dvc.lock, dvc.yaml
    "json": 64 * MIB,  # metric artefacts read by checklist items
    "yaml": 8 * MIB,  # anything else
}
MAX_ALIASES = 1_000  # alias uses in one document
MAX_NODES = 2_000_000  # nodes once every alias is expanded (what a consumer would walk)
MAX_DEPTH = 100  # nesting levels


def read_limited(path: str | os.PathLike, *, what: str, kind: str = "yaml", error: type[UserError] = UserError,
                 fix: str = "Correct the file") -> bytes:
    """The bytes of a regular file of at most ``SIZE_LIMITS[kind]`` bytes; anything else
    (missing, a FIFO, a device such as /dev/zero behind a link, a folder, too large) is
    ``error`` naming the file. The file is opened non-blocking, so a FIFO cannot hang."""
    path = Path(path)
    limit = SIZE_LIMITS.get(kind, SIZE_LIMITS["yaml"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"the {what} does not exist", where=str(path), fix=fix) from None
    except IsADirectoryError:
        raise error(f"the {what} is a folder, not a file", where=str(path), fix=fix) from None
    except OSError as exc:
        raise error(f"cannot read the {what} ({exc.strerror})", where=str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind_text = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file"
            link = f" (a link to {os.readlink(path)})" if path.is_symlink() else ""
            raise error(f"the {what} is {kind_text}{link}, not a regular file", where=str(path),
                        fix="Replace it by the file itself")
        if info.st_size > limit:
            raise error(f"the {what} is {info.st_size:,} bytes, more than the {limit:,} this kind of file may have",
                        where=str(path), fix=fix)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 * MIB, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while we read
                raise error(f"the {what} is more than the {limit:,} bytes this kind of file may have",
                            where=str(path), fix=fix)
        return b"".join(chunks)
    except IsADirectoryError:
        raise error(f"the {what} is a folder, not a file", where=str(path), fix=fix) from None
    except OSError as exc:
        raise error(f"cannot read the {what} ({exc.strerror})", where=str(path)) from None
    finally:
        os.close(fd)


class _TooComplex(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any = None):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer shares an aliased node instead of copying it, so composing a bomb
    is cheap, but everything that later walks the result (hashing, validation, JSON) expands
    it. This composer counts each node with the size it has once its aliases are expanded,
    and stops at the first alias, node or nesting level over the limits."""

    _aliases = _expanded = _depth = 0
    _weights: dict[int, int]

    def compose_document(self) -> Any:
        self._aliases, self._expanded, self._depth, self._weights = 0, 0, 0, {}
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        events: Any = self  # the parser mixed in beside this class gives the event calls
        mark = events.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooComplex(f"it nests deeper than {MAX_DEPTH} levels", mark)
        alias = events.check_event(yaml.events.AliasEvent)
        start = self._expanded
        node = super().compose_node(parent, index)
        self._depth -= 1
        if alias:
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _TooComplex(f"it uses more than {MAX_ALIASES} aliases (*name)", mark)
            self._expanded += self._weights.get(id(node), 1)
        else:
            self._expanded += 1
            self._weights[id(node)] = self._expanded - start
        if self._expanded > MAX_NODES:
            raise _TooComplex(
                f"it expands to more than {MAX_NODES:,} values through its aliases (an alias bomb?)", mark)
        return node


def _loader_class() -> type:
    base: Any
    try:
        from yaml._yaml import CParser as base
    except ImportError:  # pragma: no cover - PyYAML without libyaml
        base = None
    if base is not None:  # libyaml's parser (20-50x faster) with the bounded composer above it
        class _CBounded(_BoundedComposer, base, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
            def __init__(self, stream: Any) -> None:
                base.__init__(self, stream)
                _BoundedComposer.__init__(self)
                yaml.constructor.SafeConstructor.__init__(self)
                yaml.resolver.Resolver.__init__(self)

        return _CBounded

    class _PyBounded(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _BoundedComposer,
                     yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        def __init__(self, stream: Any) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            _BoundedComposer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    return _PyBounded


BoundedLoader = _loader_class()


def parse_yaml(text: str, *, where: str, what: str, error: type[UserError] = UserError,
               fix: str = "Correct the file") -> Any:
    """Parse YAML text with ``BoundedLoader``; errors name ``where``, the line and column."""
    try:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a safe, bounded loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}, line {mark.line + 1}, column {mark.column + 1}" if mark else where
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"the {what} is not valid YAML ({problem})", where=at, fix=fix) from None
    except RecursionError:
        raise error(f"the {what} nests too deeply", where=where, fix=fix) from None


def load_yaml(path: str | os.PathLike, *, what: str, kind: str = "yaml", error: type[UserError] = UserError,
              fix: str = "Correct the file") -> Any:
    """``read_limited`` + UTF-8 + ``parse_yaml``: the one way to read a YAML file a user controls."""
    raw = read_limited(path, what=what, kind=kind, error=error, fix=fix)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"the {what} is not UTF-8 text", where=str(path), fix=fix) from None
    return parse_yaml(text, where=str(path), what=what, error=error, fix=fix)


def inside(root: str | os.PathLike, relative: str | os.PathLike) -> Path | None:
    """``root/relative`` resolved, if it stays inside ``root`` (also through links); else None."""
    base = Path(root).resolve()
    target = (base / relative).resolve()
    return target if target == base or base in target.parents else None


def atomic_write(path: str | os.PathLike, data: bytes | str, *, mode: int | None = None) -> Path:
    """Replace ``path`` by ``data`` atomically.

    ``mode`` sets the permissions of the new file; without it an existing file keeps its
    mode and a new one gets 0644.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
