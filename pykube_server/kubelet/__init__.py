"""The virtual kubelet: nodes, their Leases and status, and pods run through a CRI-shaped runtime."""
