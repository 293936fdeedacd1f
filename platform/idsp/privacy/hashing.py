"""Keyed hashing for pseudonyms: HMAC-SHA256 of many values, over the idle CPU cores.

Rule: the key's secret goes in and 64-character hex digests come out; the secret is never
returned, logged or stored. Large inputs are split over forked worker processes that
write straight into one shared memory map, so nothing is pickled or sent back.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence

PARALLEL_THRESHOLD = 200_000


class _Hmac:
    """HMAC-SHA256 with the key's inner and outer pads hashed once (RFC 2104)."""

    def __init__(self, secret: bytes):
        block = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
        block = block.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digests(self, messages: Iterable[bytes | memoryview]) -> bytes:
        """The 32-byte digests of all messages, concatenated."""
        inner, outer = self.inner.copy, self.outer.copy
        out: list[bytes] = []
        append = out.append
        for message in messages:
            i = inner()
            i.update(message)
            o = outer()
            o.update(i.digest())
            append(o.digest())
        return b"".join(out)


# The job of the forked workers, set just before they fork so that they inherit it (and the
# values it reads) instead of receiving it pickled; each task is only a (start, stop) range.
_JOB: Callable[[int, int], None] | None = None
_JOB_LOCK = threading.Lock()  # one forked hashing job at a time per process


def _run_job(bounds: tuple[int, int]) -> None:
    assert _JOB is not None
    _JOB(*bounds)


def hex_digests(secret: bytes, count: int, messages: Callable[[int, int], Iterable[bytes | memoryview]],
                 workers: int | None) -> memoryview:
    """The hex HMAC-SHA256 digests of messages ``0 .. count-1``, 64 ASCII bytes each, back
    to back. ``messages(start, stop)`` yields the messages of a range.

    Large inputs are split in ranges over forked worker processes when cores are idle
    (hashlib keeps the GIL for short inputs, so threads would not help); each worker
    writes its hex digests straight into a shared anonymous memory map, so nothing is
    pickled, sent back or joined.
    """
    global _JOB
    import mmap

    hasher = _Hmac(secret)
    out = mmap.mmap(-1, max(64 * count, 1))  # anonymous and shared with forked children

    def job(start: int, stop: int) -> None:
        out[64 * start : 64 * stop] = binascii.hexlify(hasher.digests(messages(start, stop)))

    workers = workers or idle_cores()
    if workers <= 1 or count < PARALLEL_THRESHOLD:
        job(0, count)
    else:
        import multiprocessing as mp

        size = -(-count // (workers * 4))
        with _JOB_LOCK:
            _JOB = job
            try:
                with mp.get_context("fork").Pool(workers) as pool:
                    pool.map(_run_job, [(i, min(i + size, count)) for i in range(0, count, size)])
            finally:
                _JOB = None
    return memoryview(out)[: 64 * count]


def text_messages(values: Sequence[str]) -> Callable[[int, int], Iterable[bytes]]:
    return lambda start, stop: (value.encode() for value in values[start:stop])


def fixed_messages(packed: bytes, width: int) -> Callable[[int, int], Iterable[memoryview]]:
    view = memoryview(packed)
    return lambda start, stop: (view[i : i + width] for i in range(start * width, stop * width, width))


def idle_cores() -> int:
    """Cores not already busy (1-minute load average): extra processes on a loaded
    machine only add overhead."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    busy = max(0.0, busy - 1.0)  # the calling process itself is one of the busy ones
    return max(1, min(cores, int(cores - busy + 0.5)))


def hmac_many(secret: bytes, values: Sequence[str], workers: int | None = None) -> list[str]:
    """Hex HMAC-SHA256 of many strings; large inputs are split over the idle CPU cores."""
    text = str(hex_digests(secret, len(values), text_messages(values), workers), "ascii")
    return [text[i : i + 64] for i in range(0, len(text), 64)]

