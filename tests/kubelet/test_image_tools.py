"""The process runtime's stand-ins for an image's own tools (`image_tools`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pykube_server.kubelet.runtimes.process import image_argv, image_tools

BUSYBOX = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_busybox_sh_keeps_non_identifier_variables(tmp_path: Path) -> None:
    """busybox's `sh -c env` prints `p-data-1=...` from an envFrom prefix (the ConfigMap/Secret env
    conformance tests expect it); dash drops such names, so busybox images get bash as `sh`."""
    tools = image_tools(BUSYBOX)
    assert set(tools) == {"sh"}
    link = tmp_path / "sh"
    link.symlink_to(tools["sh"])
    out = subprocess.run([str(link), "-c", "env; [[ a == a ]] && echo brackets"], capture_output=True, text=True,
                         env={"p-data-1": "value-1", "PATH": os.defpath}, check=True).stdout
    assert "p-data-1=value-1" in out.splitlines()
    assert "brackets" in out.splitlines()


def test_other_images_get_no_sh() -> None:
    assert "sh" not in image_tools("registry.k8s.io/e2e-test-images/agnhost:2.53")
    assert set(image_tools("python:3.12")) == {"python", "python3"}


def test_absolute_shell_path_runs_the_images_stand_in(tmp_path: Path) -> None:
    """`/bin/sh -c 'if [[ ... ]]'` (e2ejob's failOnce) needs the image's shell, not the host's dash."""
    (tmp_path / "sh").symlink_to("/usr/bin/bash")
    assert image_argv(tmp_path, ["/bin/sh", "-c", "x"]) == [str(tmp_path / "sh"), "-c", "x"]
    assert image_argv(tmp_path, ["/bin/echo", "x"]) == ["/bin/echo", "x"]
    assert image_argv(tmp_path, ["sh", "-c", "x"]) == ["sh", "-c", "x"]
    assert image_argv(tmp_path, []) == []
