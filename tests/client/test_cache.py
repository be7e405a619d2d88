"""Indexer and Lister: keys, named indices kept current through updates and deletes."""

from __future__ import annotations

import pytest

from pykube_server.client.cache import (
    NAMESPACE_INDEX,
    NODE_NAME_INDEX,
    OWNER_UID_INDEX,
    Indexer,
    Lister,
    key_of,
    namespace_index,
    node_name_index,
    owner_uid_index,
    split_key,
)


def pod(name: str, ns: str = "default", node: str = "", owners: tuple[str, ...] = (), rv: str = "1", **labels: str) -> dict:
    meta = {"name": name, "namespace": ns, "resourceVersion": rv, "labels": labels,
            "ownerReferences": [{"uid": u, "kind": "ReplicaSet", "name": u} for u in owners]}
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}}


def make() -> Indexer:
    return Indexer({NAMESPACE_INDEX: namespace_index, OWNER_UID_INDEX: owner_uid_index,
                    NODE_NAME_INDEX: node_name_index})


def test_keys() -> None:
    assert key_of(pod("a", "ns")) == "ns/a"
    assert key_of({"metadata": {"name": "node1"}}) == "node1"
    assert split_key("ns/a") == ("ns", "a") and split_key("node1") == ("", "node1")


def test_indices_follow_updates_and_deletes() -> None:
    idx = make()
    idx.add(pod("a", node="n1", owners=("rs1",)))
    idx.add(pod("b", node="n1", owners=("rs1", "rs2")))
    idx.add(pod("c", ns="other", node="n2"))
    assert idx.index_keys(NODE_NAME_INDEX, "n1") == ["default/a", "default/b"]
    assert idx.index_keys(OWNER_UID_INDEX, "rs2") == ["default/b"]
    old = idx.update(pod("a", node="n2", owners=("rs1",), rv="2"))
    assert old is not None and old["metadata"]["resourceVersion"] == "1"
    assert idx.index_keys(NODE_NAME_INDEX, "n1") == ["default/b"]
    assert idx.index_keys(NODE_NAME_INDEX, "n2") == ["default/a", "other/c"]
    assert idx.delete("default/b") is not None
    assert idx.index_keys(OWNER_UID_INDEX, "rs1") == ["default/a"]
    assert idx.index_keys(OWNER_UID_INDEX, "rs2") == []
    assert idx.delete("default/b") is None


def test_replace_rebuilds_indices() -> None:
    idx = make()
    idx.add(pod("a", node="n1"))
    idx.replace([pod("z", node="n9")])
    assert idx.keys() == ["default/z"]
    assert idx.index_keys(NODE_NAME_INDEX, "n1") == [] and idx.index_keys(NODE_NAME_INDEX, "n9") == ["default/z"]


def test_added_indexer_indexes_existing_objects_and_rejects_duplicates() -> None:
    idx = Indexer()
    idx.add(pod("a", node="n1"))
    idx.add_indexers({NODE_NAME_INDEX: node_name_index})
    assert idx.index_keys(NODE_NAME_INDEX, "n1") == ["default/a"]
    with pytest.raises(ValueError):
        idx.add_indexers({NODE_NAME_INDEX: owner_uid_index})
    with pytest.raises(KeyError):
        idx.index_keys("nope", "x")


def test_lister_views() -> None:
    idx = make()
    idx.add(pod("a", app="web"))
    idx.add(pod("b", app="db"))
    idx.add(pod("c", ns="other", app="web"))
    lister = Lister(idx)
    assert lister.get("a", namespace="default") is not None and lister.get("a") is None
    assert sorted(key_of(o) for o in lister.list("app=web")) == ["default/a", "other/c"]
    assert [key_of(o) for o in lister.list("app=web", namespace="other")] == ["other/c"]
    assert len(lister.list(namespace="default")) == 2 and len(lister) == 3
    assert [key_of(o) for o in lister.by_index(NAMESPACE_INDEX, "other")] == ["other/c"]
