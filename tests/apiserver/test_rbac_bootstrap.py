"""Bootstrap policy reconciliation across restarts, in process (no controllers)."""

from __future__ import annotations

from pathlib import Path

from pykube_server.apiserver.rbac.bootstrap import AUTOUPDATE, GROUP
from pykube_server.testing import local_cluster


async def _get(lc, plural: str, name: str) -> dict:  # type: ignore[no-untyped-def]
    return (await lc.server.store_for(GROUP, "v1", plural).get("", name)).decode()


async def _replace(lc, plural: str, obj: dict) -> None:  # type: ignore[no-untyped-def]
    async def same(_: dict | None) -> dict:
        return obj

    await lc.server.store_for(GROUP, "v1", plural).update("", obj["metadata"]["name"], same)


async def test_restart_restores_removed_rules_unless_autoupdate_is_false(tmp_path: Path) -> None:
    async with local_cluster(tmp_path, authorization_mode="Node,RBAC") as lc:
        basic = await _get(lc, "clusterroles", "system:basic-user")
        assert len(basic["rules"]) == 2
        basic["rules"] = basic["rules"][:1]
        await _replace(lc, "clusterroles", basic)
        discovery = await _get(lc, "clusterroles", "system:discovery")
        discovery["rules"] = []
        discovery["metadata"]["annotations"][AUTOUPDATE] = "false"
        await _replace(lc, "clusterroles", discovery)
        binding = await _get(lc, "clusterrolebindings", "system:basic-user")
        binding["subjects"] = [{"kind": "User", "name": "someone", "apiGroup": GROUP}]
        await _replace(lc, "clusterrolebindings", binding)
    async with local_cluster(tmp_path, authorization_mode="Node,RBAC") as lc:
        assert len((await _get(lc, "clusterroles", "system:basic-user"))["rules"]) == 2
        assert not (await _get(lc, "clusterroles", "system:discovery")).get("rules")  # left alone
        subjects = (await _get(lc, "clusterrolebindings", "system:basic-user"))["subjects"]
        assert [s["name"] for s in subjects] == ["someone", "system:authenticated"]
