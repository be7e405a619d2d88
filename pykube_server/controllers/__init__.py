"""kube-controller-manager: one module per controller, each a reconcile loop over informers."""
