"""The mandatory API Priority and Fairness objects made at start and restored after deletion."""

from __future__ import annotations

from pathlib import Path

from pykube_server.apiserver.flowcontrolbootstrap import AUTOUPDATE
from pykube_server.testing import local_cluster

GROUP = "flowcontrol.apiserver.k8s.io"


async def test_exempt_and_catch_all_exist_and_come_back(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        levels = lc.server.store_for(GROUP, "v1", "prioritylevelconfigurations")
        schemas = lc.server.store_for(GROUP, "v1", "flowschemas")
        exempt = (await levels.get("", "exempt")).decode()
        assert exempt["spec"]["type"] == "Exempt"
        assert exempt["metadata"]["annotations"] == AUTOUPDATE
        catch_all = (await schemas.get("", "catch-all")).decode()
        assert catch_all["spec"]["matchingPrecedence"] == 10000
        assert catch_all["spec"]["distinguisherMethod"] == {"type": "ByUser"}
        assert (await schemas.get("", "exempt")).decode()["spec"]["rules"][0]["subjects"] == [
            {"kind": "Group", "group": {"name": "system:masters"}}]
        await schemas.delete("", "catch-all", {})
    async with local_cluster(tmp_path) as lc:
        schemas = lc.server.store_for(GROUP, "v1", "flowschemas")
        assert (await schemas.get("", "catch-all")).decode()["spec"]["priorityLevelConfiguration"] == {"name": "catch-all"}
