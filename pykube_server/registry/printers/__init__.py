"""Server-side printing: the Table columns kube-apiserver 1.33 renders for every built-in kind.

`kubectl get` asks for `as=Table` and prints the server's columns and cells verbatim, so each
kind's columns here mirror upstream's printers (`pkg/printers/internalversion/printers.go`,
the aggregator's APIService table, and the default table convertor's NAME and CREATED AT for
kinds without a printer). The server always renders the wide cells; kubectl hides priority-1
columns unless `-o wide`. One module per area keeps each file small:

- `pods.py`: pods (the STATUS/READY/RESTARTS logic);
- `core.py`: the rest of the core group; `events.py`: both Event APIs;
- `workloads.py`: apps, batch, autoscaling, policy;
- `cluster.py`: every other built-in group.

`COLUMNS` is keyed by (group, plural); `columns_for` falls back to NAME and AGE, what a custom
resource without additionalPrinterColumns prints.
"""

from __future__ import annotations

from pykube_server.registry.printers import cluster, core, workloads
from pykube_server.registry.printers.common import CREATED_AT, DEFAULT_COLUMNS
from pykube_server.registry.printers.pods import POD_COLUMNS, pod_summary
from pykube_server.registry.strategy import AGE, NAME, Column


def _build() -> dict[tuple[str, str], tuple[Column, ...]]:
    table: dict[tuple[str, str], tuple[Column, ...]] = {("", "pods"): POD_COLUMNS}
    table.update({("", plural): columns for plural, columns in core.COLUMNS.items()})
    for part in (workloads.COLUMNS, cluster.COLUMNS):
        duplicated = table.keys() & part.keys()
        if duplicated:
            raise ValueError(f"printer columns defined twice: {sorted(duplicated)}")
        table.update(part)
    return table


COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = _build()
"""Every built-in kind's Table columns by (group, plural)."""


def columns_for(group: str, plural: str) -> tuple[Column, ...]:
    """The kind's columns, or NAME and AGE for kinds without a printer (custom resources)."""
    return COLUMNS.get((group, plural), (NAME, AGE))


__all__ = ["COLUMNS", "CREATED_AT", "DEFAULT_COLUMNS", "columns_for", "pod_summary"]
