"""kube-scheduler: a queue, a cache kept by informers, filter and score plugins, binding."""
