"""The TTL-after-finished controller: deletes finished Jobs `ttlSecondsAfterFinished` later.

Kube's `ttl-after-finished-controller`: a Job counts as finished when its `Complete` or `Failed`
condition is True, from that condition's transition time. Before deleting, the Job is read again
from the API server (the cached copy may be stale: its TTL may have been changed or removed), and
it is deleted with Foreground propagation and a uid precondition, so its pods go first and a new
Job of the same name is never hit.
"""

from __future__ import annotations

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.rest import JOBS
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.job import job_finish_time
from pykube_server.controllers.workload_common import is_deleting, meta, spec


class TTLAfterFinishedReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.jobs = ctx.informer(JOBS).lister

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        return Controller("ttl-after-finished-controller", cls(ctx), workers=2, clock=ctx.clock).watches(ctx.informer(JOBS))

    def _remaining(self, job: Obj) -> float | None:
        """Seconds until the Job expires (<= 0: expired), None when it never does."""
        ttl = spec(job).get("ttlSecondsAfterFinished")
        finished = job_finish_time(job)
        if ttl is None or finished is None or is_deleting(job):
            return None
        return finished.timestamp() + int(ttl) - self.clock.wall().timestamp()

    async def reconcile(self, request: Request) -> Result:
        cached = self.jobs.get(request.name, namespace=request.namespace)
        if cached is None or self._remaining(cached) is None:
            return Result()
        remaining = self._remaining(cached)
        if remaining is not None and remaining > 0:
            return Result(requeue_after=remaining)
        try:
            fresh = await self.client.get(JOBS, request.name, namespace=request.namespace)
        except errors.NotFound:
            return Result()
        remaining = self._remaining(fresh)
        if remaining is None:
            return Result()
        if remaining > 0:
            return Result(requeue_after=remaining)
        try:
            await self.client.delete(JOBS, request.name, namespace=request.namespace,
                                     preconditions={"uid": meta(fresh)["uid"]}, propagation_policy="Foreground")
        except (errors.NotFound, errors.Conflict):
            pass
        return Result()
