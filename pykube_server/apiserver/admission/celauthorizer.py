"""kube's CEL `authorizer` library for admission expressions (webhook matchConditions and
ValidatingAdmissionPolicy): checks for the requesting user, answered by the server's authorizer.

cel-python evaluates synchronously, so an expression that uses the authorizer is evaluated in a
worker thread (`evaluate_in_thread`) whose `authorize` callable hands each check back to the
event loop and waits for the decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from pykube_server.apiserver import authz
from pykube_server.apiserver.authn import UserInfo

Check = tuple[bool, str, str]
"""(allowed, reason, error) as the library's Decision exposes them."""
T = TypeVar("T")
CHECK_TIMEOUT_SECONDS = 30


async def check(authorizer: authz.Authorizer, user: UserInfo, what: dict[str, str]) -> Check:
    """One authorizer check for `user`; `what` carries the library's chosen attributes."""
    request = authz.RequestAttributes(
        user=user, verb=what.get("verb", ""), namespace=what.get("namespace", ""),
        api_group=what.get("api_group", ""), resource=what.get("resource", ""),
        subresource=what.get("subresource", ""), name=what.get("name", ""), path=what.get("path", ""),
        resource_request="path" not in what)
    try:
        decision, reason = await authorizer.authorize(request)
    except Exception as exc:  # an authorizer failure is the decision's error(), not ours
        return False, "", str(exc)
    return decision == authz.Decision.ALLOW, reason, ""


async def evaluate_in_thread(authorizer: authz.Authorizer, user: UserInfo,
                             evaluate: Callable[[Callable[[dict[str, str]], Check]], T]) -> T:
    """`evaluate(authorize)` in a worker thread, its authorizer checks answered on this loop."""
    loop = asyncio.get_running_loop()

    def authorize(what: dict[str, str]) -> Check:
        return asyncio.run_coroutine_threadsafe(check(authorizer, user, what), loop).result(CHECK_TIMEOUT_SECONDS)

    return await asyncio.to_thread(evaluate, authorize)


