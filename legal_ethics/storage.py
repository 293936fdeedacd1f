"""Reading and writing the files of legal_ethics safely.

Rule: every write is atomic (temp file in the same folder, fsync, ``os.replace``), every
read-modify-write happens under an exclusive file lock, every read is bounded (a regular
file under a size cap, YAML with limited aliases and depth: ``idsp.files.load_yaml``) and
every YAML error names the file and line. Nothing here knows what the files mean.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from idsp.errors import UserError
from idsp.files import atomic_write, parse_yaml, read_limited
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write_yaml(path: Path, data: Any) -> None:
    atomic_write(path, dump_yaml(data))


# The size cap that applies to each kind of file, by the ``what`` callers name it with.
_KINDS = {"checklist definition": "checklist", "answers file": "answers", "review record": "review",
          "reviewer registry": "registry", "catalogue": "catalogue"}


def read_yaml(path: Path, *, what: str, fix: str = "Correct the file") -> Any:
    """Parse a YAML file (bounded: ``idsp.files``); on error raise a ``UserError`` naming
    file, line and column."""
    raw = read_limited(path, what=what, kind=_KINDS.get(what, "yaml"), fix=fix)
    return _parse_yaml(_utf8(raw, path=path, what=what, fix=fix), path=path, what=what, fix=fix)


def _utf8(raw: bytes, *, path: Path, what: str, fix: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"the {what} is not UTF-8 text", where=str(path), fix=fix) from None


def _parse_yaml(text: str, *, path: Path, what: str, fix: str) -> Any:
    return parse_yaml(text, where=str(path), what=what, fix=fix)


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

    raw = read_limited(path, what=what, kind=_KINDS.get(what, "yaml"), fix=fix)
    key = (model, hashlib.sha256(raw).hexdigest())
    hit = _MODEL_CACHE.get(key)
    if hit is None:
        text = _utf8(raw, path=path, what=what, fix=fix)
        hit = parse_model(model, _parse_yaml(text, path=path, what=what, fix=fix), path=path, what=what)
        if len(_MODEL_CACHE) > 256:
            _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = hit
    return hit  # type: ignore[return-value]
