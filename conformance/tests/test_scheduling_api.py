"""PriorityClass endpoints: test/e2e/scheduling/preemption.go ("PriorityClass endpoints").

Upstream names the classes p1 and p2; ours carry a unique suffix so that other reproductions
that create p1..p4 (the preemption tests) cannot collide with them in a shared cluster."""

from __future__ import annotations

import uuid

from kubernetes import client

from conformance.harness import conformance


@conformance("[sig-scheduling] SchedulerPreemption PriorityClass endpoints verify PriorityClass endpoints "
             "can be operated with different HTTP methods [Conformance] [Serial]")
def test_priority_class_endpoints(api) -> None:  # type: ignore[no-untyped-def]
    sched = client.SchedulingV1Api(api)
    test_uuid = str(uuid.uuid4())
    suffix = test_uuid[:6]
    pcs = [sched.create_priority_class({"metadata": {"name": f"p{i}-{suffix}", "labels": {"e2e": test_uuid}},
                                        "value": i}) for i in (1, 2)]
    try:
        # 1. patch/update of the immutable value fails
        try:
            sched.patch_priority_class(pcs[0].metadata.name, {"value": pcs[0].value * 10})
        except client.exceptions.ApiException as exc:
            assert 400 <= exc.status < 500, exc.body
        else:
            raise AssertionError("expected a patch error on an immutable field")
        changed = sched.api_client.sanitize_for_serialization(pcs[1])
        changed["value"] = pcs[1].value * 10
        try:
            sched.replace_priority_class(pcs[1].metadata.name, changed)
        except client.exceptions.ApiException as exc:
            assert 400 <= exc.status < 500, exc.body
        else:
            raise AssertionError("expected an update error on an immutable field")

        # 2. patch/update of the description succeeds
        new_desc = "updated description"
        sched.patch_priority_class(pcs[0].metadata.name, {"description": new_desc})
        updated = sched.api_client.sanitize_for_serialization(pcs[1])
        updated["description"] = new_desc
        sched.replace_priority_class(pcs[1].metadata.name, updated)

        # 3. list; 4. the live objects keep their value, carry the description and a newer resourceVersion
        sched.list_priority_class()
        for pc in pcs:
            live = sched.read_priority_class(pc.metadata.name)
            assert live.value == pc.value
            assert live.description == new_desc
            assert live.metadata.resource_version.isdigit()
            assert int(live.metadata.resource_version) > int(pc.metadata.resource_version)
    finally:
        sched.delete_collection_priority_class(label_selector=f"e2e={test_uuid}")
