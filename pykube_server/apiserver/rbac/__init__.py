"""RBAC: Roles, ClusterRoles and their bindings decide what a user may do.

`rules.py` matches one PolicyRule against a request, `index.py` keeps the bindings of the watch
cache indexed by subject, `authorizer.py` is the `Authorizer` over that index, `node.py` the
Node authorizer, `escalation.py` refuses writes that would grant more than the writer holds,
`bootstrap.py` is the default policy kube-apiserver reconciles on start, and `modes.py` turns
`--authorization-mode` into the authorizer chain.
"""
