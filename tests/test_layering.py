"""The architecture's import rules, checked on the source (the import-linter contracts in
style.md, without the dependency): components reconcile only through the API, and the server
side never imports the client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pykube_server"
COMPONENTS = ("controllers", "scheduler", "kubelet", "proxy", "dns")
SERVER_SIDE = ("apiserver", "registry", "storage")


def imports_of(room: str) -> list[tuple[str, str]]:
    out = []
    for path in (PACKAGE / room).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.append((str(path.relative_to(PACKAGE)), node.module))
            elif isinstance(node, ast.Import):
                out.extend((str(path.relative_to(PACKAGE)), alias.name) for alias in node.names)
    return out


def test_components_use_only_client_and_api() -> None:
    rooms = [room for room in COMPONENTS if (PACKAGE / room).exists()]
    bad = [(f, m) for room in rooms for f, m in imports_of(room)
           if m.startswith("pykube_server.") and m.split(".")[1] in (*SERVER_SIDE, "cmd")]
    assert bad == []


@pytest.mark.parametrize("room", SERVER_SIDE)
def test_server_side_never_imports_the_client(room: str) -> None:
    bad = [(f, m) for f, m in imports_of(room) if m.startswith("pykube_server.client")]
    assert bad == []


def test_api_is_pure() -> None:
    bad = [(f, m) for f, m in imports_of("api")
           if m.startswith("pykube_server.") and not m.startswith("pykube_server.api")
           or m.split(".")[0] in ("aiohttp", "aiosqlite", "asyncio")]
    assert bad == []


def test_storage_does_not_know_the_api_layers() -> None:
    """Storage knows keys and bytes: never the HTTP API or what kinds mean. (It may be an HTTP
    client of its own store: the etcd backend talks to etcd's gateway through aiohttp.)"""
    bad = [(f, m) for f, m in imports_of("storage")
           if m.startswith(("pykube_server.apiserver", "pykube_server.registry", "aiohttp.web"))]
    assert bad == []
