"""SubjectAccessReview and LocalSubjectAccessReview: test/e2e/auth/subjectreviews.go."""

from __future__ import annotations

from kubernetes import client
from urllib3._collections import HTTPHeaderDict

from conformance.harness import conformance


def list_configmaps_as(api, ns: str, user: str, uid: str, groups: list[str]) -> int:  # type: ignore[no-untyped-def]
    """GET the namespace's configmaps impersonating `user` (client-go's rest.ImpersonationConfig):
    one Impersonate-Group header line per group, so the headers go out as a multi-dict."""
    method, url, hdrs, _, _ = api.param_serialize("GET", f"/api/v1/namespaces/{ns}/configmaps",
                                                  header_params={"Accept": "application/json"},
                                                  auth_settings=["BearerToken"])
    headers = HTTPHeaderDict(hdrs)
    headers.add("Impersonate-User", user)
    headers.add("Impersonate-Uid", uid)
    for group in groups:
        headers.add("Impersonate-Group", group)
    response = api.rest_client.pool_manager.request(method, url, headers=headers, timeout=30)
    return response.status


@conformance("[sig-auth] SubjectReview should support SubjectReview API operations [Conformance]")
def test_subject_review_api(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, authz = client.CoreV1Api(api), client.AuthorizationV1Api(api)
    sa = core.create_namespaced_service_account(ns, {"metadata": {"name": "e2e"}})
    username = f"system:serviceaccount:{ns}:e2e"
    groups = ["system:authenticated", "system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    uid = sa.metadata.uid
    attributes = {"verb": "list", "resource": "configmaps", "namespace": ns, "version": "v1"}

    sar = authz.create_subject_access_review({"spec": {"resourceAttributes": attributes, "user": username,
                                                       "groups": groups, "uid": uid}})
    expected_allowed = sar.status.allowed

    status = list_configmaps_as(api, ns, username, uid, groups)
    assert status in (200, 403), f"unexpected HTTP {status} listing configmaps as {username}"
    actually_allowed = status == 200
    assert actually_allowed == expected_allowed, (
        f"SubjectAccessReview allowed={expected_allowed}, the request allowed={actually_allowed}")

    lsar = authz.create_namespaced_local_subject_access_review(ns, {
        "metadata": {"namespace": ns},
        "spec": {"resourceAttributes": attributes, "user": "e2e", "groups": groups, "uid": uid}})
    assert lsar.status.allowed == actually_allowed, (
        f"LocalSubjectAccessReview allowed={lsar.status.allowed}, the request allowed={actually_allowed}")
