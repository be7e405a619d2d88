"""pykube: a Kubernetes control plane in Python (see docs/architecture.md)."""

__version__ = "0.1.0"
