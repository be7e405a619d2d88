"""The kubelet's atomic writer: how configMap, secret, downwardAPI and projected volumes lay out files.

Why this layout: a program reading a mounted ConfigMap must never see half an update. The real
kubelet writes every version into a fresh hidden directory named after the time
(`..2026_11_27_06_52_07.1234567890`, mode 0755), points the `..data` symlink at it by renaming
a new `..data_tmp` link over it (rename is atomic), and keeps one user-visible symlink per
top-level name (`key -> ..data/key`, `dir -> ..data/dir`). Programs that watch `..data` with
inotify (as many config reloaders do) work here unchanged. A write that changes nothing leaves
the directory untouched, so a periodic re-sync costs a few reads.

Plain synchronous file operations: payloads are small, and the volume manager calls this from
its own thread-free sync step.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
MAX_FILE_NAME = 255
MAX_PATH = 4096


@dataclass(frozen=True, slots=True)
class FileProjection:
    data: bytes
    mode: int


class PayloadError(ValueError):
    """A projected path the kubelet refuses (the message is the kubelet's)."""


def validate_path(path: str) -> None:
    """Relative, no `..` element, not starting with `..`, within length limits."""
    if not path:
        raise PayloadError(f'invalid path: must not be empty: "{path}"')
    if path.startswith("/"):
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if len(path) > MAX_PATH:
        raise PayloadError(f"invalid path: must be less than or equal to {MAX_PATH} characters")
    items = path.split("/")
    for item in items:
        if item == "..":
            raise PayloadError(f"invalid path: must not contain '..': {path}")
        if len(item) > MAX_FILE_NAME:
            raise PayloadError(f"invalid path: filenames must be less than or equal to {MAX_FILE_NAME} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise PayloadError(f"invalid path: must not start with '..': {path}")


def _clean(payload: Mapping[str, FileProjection]) -> dict[str, FileProjection]:
    out = {}
    for path, projection in payload.items():
        validate_path(path)
        out[os.path.normpath(path)] = projection
    return out


def _unchanged(payload: Mapping[str, FileProjection], old: Path) -> bool:
    existing = {str(p.relative_to(old)) for p in old.rglob("*") if p.is_file()}
    if existing != set(payload):
        return False
    for path, projection in payload.items():
        file = old / path
        try:
            if file.read_bytes() != projection.data or (file.stat().st_mode & 0o7777) != projection.mode:
                return False
        except OSError:
            return False
    return True


def _new_timestamp_dir(target: Path) -> Path:
    prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    while True:
        candidate = target / f"{prefix}{random.randrange(2**32)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        candidate.chmod(0o755)  # whatever the umask: group and others must traverse it
        return candidate


def _write_payload(payload: Mapping[str, FileProjection], tsdir: Path) -> None:
    for path, projection in payload.items():
        file = tsdir / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(projection.data)
        file.chmod(projection.mode)


def write(target: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Project `payload` (relative path -> content and mode) into `target`; True if anything changed."""
    clean = _clean(payload)
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / DATA_DIR
    try:
        old_name = os.readlink(data_link)
    except FileNotFoundError:
        old_name = ""
    old_dir = target / old_name if old_name else None
    if old_dir is not None and _unchanged(clean, old_dir):
        return False
    old_visible = {p.name for p in target.iterdir() if not p.name.startswith("..")}
    tsdir = _new_timestamp_dir(target)
    try:
        _write_payload(clean, tsdir)
        visible = {path.split("/", 1)[0] for path in clean}
        for name in visible:
            link = target / name
            if not link.is_symlink():
                link.symlink_to(f"{DATA_DIR}/{name}")
        tmp_link = target / NEW_DATA_DIR
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(tsdir.name)
        os.replace(tmp_link, data_link)
    except BaseException:
        shutil.rmtree(tsdir, ignore_errors=True)
        raise
    for name in old_visible - visible:
        (target / name).unlink(missing_ok=True)
    if old_dir is not None:
        shutil.rmtree(old_dir, ignore_errors=True)
    return True
