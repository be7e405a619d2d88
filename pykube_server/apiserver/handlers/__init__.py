"""The generic REST handlers, one module per kind of verb; all resolve through the registry."""
