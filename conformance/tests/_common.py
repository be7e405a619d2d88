"""Small helpers shared by the reproductions that run pods (not tests themselves)."""

from __future__ import annotations

from kubernetes import client

from conformance.harness import wait_for

PAUSE = "registry.k8s.io/pause:3.10"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
HTTPD = "registry.k8s.io/e2e-test-images/httpd:2.4.38-4"
BUSYBOX = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"
NGINX = "registry.k8s.io/e2e-test-images/nginx:1.14-4"


def wait_default_service_account(api, ns: str) -> None:  # type: ignore[no-untyped-def]
    """The e2e framework waits for the namespace's `default` ServiceAccount before a test starts:
    until the serviceaccount controller has made it, ServiceAccount admission rejects pods."""
    core = client.CoreV1Api(api)
    wait_for(lambda: core.read_namespaced_service_account("default", ns), timeout=30,
             what=f"the default service account of {ns}")


def restricted(pod: dict) -> dict:
    """e2epod.MustMixinRestrictedPodSecurity: the restricted Pod Security profile's settings."""
    spec = pod["spec"]
    spec.setdefault("securityContext", {}).update({"runAsNonRoot": True, "runAsUser": 1000,
                                                   "seccompProfile": {"type": "RuntimeDefault"}})
    for c in spec["containers"]:
        c.setdefault("securityContext", {}).update({"allowPrivilegeEscalation": False,
                                                    "capabilities": {"drop": ["ALL"]}})
    return pod


def is_ready(pod) -> bool:  # type: ignore[no-untyped-def]
    """podutil.IsPodReady, and not being deleted."""
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def watch_until(list_fn, ns: str, selector: str, resource_version: str, check, timeout: int = 60):  # type: ignore[no-untyped-def]
    """watchtools.Until: watch `list_fn` (a namespaced list method) with the label selector from
    `resource_version` until `check(event_type, obj)` holds; returns that object."""
    from kubernetes import watch

    w = watch.Watch()
    for event in w.stream(list_fn, ns, label_selector=selector, resource_version=resource_version,
                          timeout_seconds=timeout):
        if check(event["type"], event["object"]):
            w.stop()
            return event["object"]
    raise AssertionError(f"no matching watch event within {timeout}s")


def retry_on_conflict(fn, attempts: int = 5):  # type: ignore[no-untyped-def]
    """retry.RetryOnConflict: call `fn` again while it fails with 409."""
    for attempt in range(attempts):
        try:
            return fn()
        except client.exceptions.ApiException as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
    return None


def pods_running(api, ns: str, selector: str, n: int, timeout: float = 60) -> list:  # type: ignore[no-untyped-def]
    """e2epod.VerifyPodsRunning (without the response check): n pods with the selector run."""
    core = client.CoreV1Api(api)

    def running():  # type: ignore[no-untyped-def]
        pods = [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
                if p.metadata.deletion_timestamp is None]
        return pods if len(pods) >= n and sum(p.status.phase == "Running" for p in pods) >= n else None
    return wait_for(running, timeout=timeout, what=f"{n} running pods with {selector}")


class EventStream:
    """One long watch read in the background, consumed condition by condition (upstream's
    RetryWatcher + watchUntilWithoutRetry): each `until` takes events off the stream until one
    satisfies its condition, so later conditions only see later events."""

    def __init__(self, list_fn, ns: str, selector: str, resource_version: str | None = None) -> None:  # type: ignore[no-untyped-def]
        import queue
        import threading

        from kubernetes import watch

        self._queue: queue.Queue = queue.Queue()
        self._watch = watch.Watch()
        kwargs = {"label_selector": selector, "timeout_seconds": 600}
        if resource_version:
            kwargs["resource_version"] = resource_version

        def pump() -> None:
            try:
                for event in self._watch.stream(list_fn, ns, **kwargs):
                    self._queue.put(event)
            except Exception as exc:  # noqa: BLE001 - surfaced to the consumer
                self._queue.put(exc)
        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()

    def until(self, check, timeout: float = 60):  # type: ignore[no-untyped-def]
        """The first further event for which `check(type, obj)` holds."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching watch event within {timeout}s")
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(item, Exception):
                raise item
            if check(item["type"], item["object"]):
                return item

    def stop(self) -> None:
        self._watch.stop()
