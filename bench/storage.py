"""Storage write throughput: the SQLite backend against raw sqlite3, the ceiling it batches toward.

Prints creates/s for `SQLiteBackend` with 1 and with 32 concurrent writers (1 KiB values), then
raw sqlite3 inserts into the same schema in WAL mode with synchronous=NORMAL, one transaction
per insert and all in one transaction. A benchmark, not a test: it asserts nothing.

    .venv/bin/python bench/storage.py [--seconds-per-case 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pykube_server.storage.sqlite import _INSERT, _SCHEMA, SQLiteBackend  # noqa: E402

VALUE = b"x" * 1024


async def backend_rate(path: Path, writers: int, seconds: float) -> float:
    """Creates per second with `writers` tasks each creating keys in a loop for `seconds`."""
    db = await SQLiteBackend.open(path)
    deadline = time.perf_counter() + seconds
    done = 0

    async def writer(i: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            await db.create(f"/registry/configmaps/bench/w{i}-{n}", VALUE)
            n += 1
        done += n

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(writers):
            tg.create_task(writer(i))
    elapsed = time.perf_counter() - start
    transactions = db.transactions
    await db.aclose()
    print(f"  ({done} creates in {transactions} transactions)")
    return done / elapsed


def raw_rate(path: Path, count: int, *, per_transaction: bool) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in _SCHEMA:
        conn.execute(statement)
    rows = [(i, f"/registry/configmaps/bench/raw-{i}", 1, 0, i, 0, VALUE) for i in range(1, count + 1)]
    start = time.perf_counter()
    if per_transaction:
        for row in rows:
            conn.execute("BEGIN")
            conn.execute(_INSERT, row)
            conn.execute("COMMIT")
    else:
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds-per-case", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for writers in (1, 32):
            path = Path(tmp) / f"backend{writers}.db"
            rate = asyncio.run(backend_rate(path, writers, args.seconds_per_case))
            print(f"SQLiteBackend, {writers:>2} concurrent writers: {rate:>9,.0f} creates/s")
        per_tx = raw_rate(Path(tmp) / "raw1.db", 20_000, per_transaction=True)
        print(f"raw sqlite3 WAL, 1 insert per transaction: {per_tx:>9,.0f} inserts/s")
        batched = raw_rate(Path(tmp) / "raw2.db", 200_000, per_transaction=False)
        print(f"raw sqlite3 WAL, one batched transaction:  {batched:>9,.0f} inserts/s")


if __name__ == "__main__":
    main()
