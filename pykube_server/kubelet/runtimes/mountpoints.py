"""Mount points for the process runtime's bind mounts, made on the host and removed after the pod.

Why: a container of the process runtime sees this machine's filesystem (there is no image root
filesystem), so a volume's mountPath such as `/etc/config` usually does not exist. A bind mount
needs a directory (or, for a file volume such as a subPath to one key, a file) at the target,
and a directory entry cannot be made in one mount namespace only. So the runtime creates what
is missing on the host before the shim binds over it in the container's private namespace,
records what it created in the sandbox directory (`mountpoints.json`), and removes those empty
directories and files when the sandbox is removed, unless another sandbox still uses them.
Nothing that existed before is ever removed, and the host never sees the volumes' contents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pykube_server.kubelet.runtime import Mount

RECORD = "mountpoints.json"


def _recorded(sandbox_dir: Path) -> list[str]:
    try:
        return list(json.loads((sandbox_dir / RECORD).read_text()))
    except (OSError, ValueError):
        return []


def prepare(mounts: Sequence[Mount], sandbox_dir: Path) -> None:
    """Make every mount's target exist (a directory, or an empty file for a file source)."""
    created = _recorded(sandbox_dir)
    before = len(created)
    for mount in sorted(mounts, key=lambda m: m.container_path.count("/")):
        target = os.path.normpath(mount.container_path)
        if os.path.lexists(target):
            continue
        parent = os.path.dirname(target)
        missing = []
        while parent and parent != "/" and not os.path.lexists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        os.makedirs(os.path.dirname(target) or "/", exist_ok=True)
        created.extend(reversed(missing))
        if os.path.isdir(mount.host_path):
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        created.append(target)
    if len(created) != before:
        tmp = sandbox_dir / (RECORD + ".tmp")
        tmp.write_text(json.dumps(created))
        os.replace(tmp, sandbox_dir / RECORD)


def release(sandbox_dir: Path, others: Iterable[Path], in_use: Iterable[str] = ()) -> None:
    """Remove what `prepare` created for this sandbox, deepest first, except what another sandbox
    recorded or another container mounts on (`in_use`: removing a directory on the host detaches
    mounts on it in every other namespace)."""
    mine = set(_recorded(sandbox_dir))
    for other in others:
        if other != sandbox_dir:
            mine -= set(_recorded(other))
    for path in in_use:
        path = os.path.normpath(path)
        while path not in ("/", ""):
            mine.discard(path)
            path = os.path.dirname(path)
    for path in sorted(mine, key=lambda p: p.count("/"), reverse=True):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)  # only when empty: never someone else's data
            elif os.path.isfile(path) and os.path.getsize(path) == 0:
                os.unlink(path)
        except OSError:
            continue
