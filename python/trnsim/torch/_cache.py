"""The disk cache of compiled graphs and the compile counters (``trnsim.torch.stats()``).

Entries are keyed by sha256 of (IR text, chip, trnsim version) and live in
``TRNSIM_CACHE_DIR`` (default ``~/.cache/trnsim/torch``; ``TRNSIM_CACHE_DIR=off`` disables the
cache). An entry is two files under ``<dir>/<key[:2]>/``: ``<key>.ir`` (the IR text the
compiler accepted, normalized by ``compiler.check``) and ``<key>.json`` (the marker: version,
chip, graph name, op and instruction counts). A hit skips the op-table check and
``compiler.check``; the C++ compile of the cached IR is cheap and is redone (the core does not
serialize programs yet). Writes are atomic (temp file + rename), so processes can share a
folder; an unwritable folder only costs the cache (one warning).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

_stats = {"compiles": 0, "cache_hits": 0, "recompiles": 0, "capture_seconds": 0.0,
          "compile_seconds": 0.0}
_warned = False


def stats() -> dict:
    """Counters of this process: ``compiles`` (graphs compiled from scratch: disk-cache
    misses), ``cache_hits`` (graphs whose compiled IR came from the disk cache),
    ``recompiles`` (graphs compiled because Dynamo recompiled a frame it had compiled before,
    e.g. for new shapes or dtypes; these count in one of the other two as well);
    ``compile_seconds`` (host time in the C++ compiler: check and compile) and
    ``capture_seconds`` (host time of trnsim's backend and trnsim.torch.compile outside the
    C++ compiler: AOTAutograd or torch.export, decomposition, serialization, partitioning;
    Dynamo's own bytecode tracing comes before the backend and is not in it)."""
    return dict(_stats)


def reset_stats() -> None:
    for k in _stats:
        _stats[k] = type(_stats[k])(0)


def count(what: str, amount=1) -> None:
    _stats[what] += amount


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off."""
    env = os.environ.get("TRNSIM_CACHE_DIR")
    if env is not None and env.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "trnsim" / "torch"


def cache_key(ir_text: str, chip: str, version: str) -> str:
    h = hashlib.sha256()
    for part in (ir_text, chip, version):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _paths(key: str):
    d = cache_dir()
    if d is None:
        return None
    sub = d / key[:2]
    return sub / f"{key}.ir", sub / f"{key}.json"


def lookup(key: str) -> str | None:
    """The cached (normalized) IR text of `key`, or None."""
    p = _paths(key)
    if p is None:
        return None
    ir, marker = p
    try:
        meta = json.loads(marker.read_text())
        text = ir.read_text()
    except (OSError, ValueError):
        return None
    if meta.get("key") != key:
        return None
    return text


def store(key: str, ir_text: str, meta: dict) -> None:
    global _warned
    p = _paths(key)
    if p is None:
        return
    ir, marker = p
    try:
        ir.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(ir, ir_text)
        _atomic_write(marker, json.dumps({"key": key, "created": time.time(), **meta},
                                         indent=1, sort_keys=True))
    except OSError as e:
        if not _warned:
            _warned = True
            warnings.warn(f"trnsim.torch: cannot write the compile cache in {ir.parent} ({e}); "
                          "set TRNSIM_CACHE_DIR to a writable folder or to 'off'", stacklevel=2)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
