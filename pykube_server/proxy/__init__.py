"""kube-proxy: Services' ClusterIPs and NodePorts served on this machine (userspace mode)."""
