"""Reading and writing the files of legal_ethics safely.

Rule: every write is atomic (temp file in the same folder, fsync, ``os.replace``), every
read-modify-write happens under an exclusive file lock, and every YAML error names the
file and line. Nothing here knows what the files mean.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from idsp.errors import UserError
from idsp.files import atomic_write
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
# libyaml is 20-50x faster than the pure-Python parser; checklists are a few hundred kB.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write_yaml(path: Path, data: Any) -> None:
    atomic_write(path, dump_yaml(data))


def read_yaml(path: Path, *, what: str, fix: str = "Correct the file") -> Any:
    """Parse a YAML file; on error raise a ``UserError`` naming file, line and column."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"the {what} does not exist", where=str(path), fix=fix) from None
    except OSError as exc:
        raise UserError(f"cannot read the {what} ({exc.strerror})", where=str(path)) from None
    except UnicodeDecodeError:
        raise UserError(f"the {what} is not UTF-8 text", where=str(path), fix=fix) from None
    return _parse_yaml(text, path=path, what=what, fix=fix)


def _parse_yaml(text: str, *, path: Path, what: str, fix: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"the {what} is not valid YAML ({problem})", where=where, fix=fix) from None


def parse_model(model: type[M], data: Any, *, path: Path, what: str) -> M:
    """Validate ``data`` against a pydantic model; errors name the file and the field."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = [
            f"`{'.'.join(str(p) for p in e['loc']) or '(top level)'}`: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()[:8]
        ]
        raise UserError(
            f"the {what} is invalid: " + "; ".join(problems),
            where=str(path),
            fix="Correct the field (or rebuild the file with the idsp ethics command that made it)",
        ) from None


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block.

    flock conflicts between separate open() calls even inside one process, so threads and
    processes are serialised alike.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# Parsed models keyed by the sha256 of the file's bytes: any edit, even one that keeps
# size and mtime, is a different key, so the cache can never hide a tampered file.
_MODEL_CACHE: dict[tuple[type, str], BaseModel] = {}


def read_model(model: type[M], path: Path, *, what: str, fix: str = "Correct the file") -> M:
    """``read_yaml`` + ``parse_model``, memoised on the exact bytes of the file."""
    import hashlib

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"the {what} does not exist", where=str(path), fix=fix) from None
    except OSError as exc:
        raise UserError(f"cannot read the {what} ({exc.strerror})", where=str(path)) from None
    key = (model, hashlib.sha256(raw).hexdigest())
    hit = _MODEL_CACHE.get(key)
    if hit is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"the {what} is not UTF-8 text", where=str(path), fix=fix) from None
        hit = parse_model(model, _parse_yaml(text, path=path, what=what, fix=fix), path=path, what=what)
        if len(_MODEL_CACHE) > 256:
            _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = hit
    return hit  # type: ignore[return-value]
