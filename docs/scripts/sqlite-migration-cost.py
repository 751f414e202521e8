"""The one-time cost of the store's schema version 4 migration (crates/zen-store/src/lib.rs):
dropping the `seq` index and column rewrites the table. A million rows of about 500 bytes, with
the four indexes of version 3, in WAL mode.

    python3 docs/scripts/sqlite-migration-cost.py
"""
import os
import sqlite3
import tempfile
import time

with tempfile.TemporaryDirectory(dir=os.path.expanduser("~")) as d:
    path = os.path.join(d, "m.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("pragma journal_mode=wal")
    c.execute("create table o(id integer primary key, source text, namespace text, severity int,"
              " count int, last_seen int, seq int, pad text)")
    c.execute("create index o_seq on o(seq)")
    c.execute("create index o_ls on o(last_seen)")
    c.execute("create index o_src on o(source, severity, id)")
    c.execute("create index o_ns on o(namespace, id)")
    c.execute("begin")
    for i in range(1_000_000):
        c.execute("insert into o values(null, ?, ?, ?, 1, ?, ?, ?)",
                  ("falco", "ns%d" % (i % 40), i % 5, i, i, "x" * 480))
    c.execute("commit")
    print("database", round(os.path.getsize(path) / 1e6), "MB")
    started = time.perf_counter()
    c.execute("begin")
    c.execute("drop index o_seq")
    c.execute("alter table o drop column seq")
    c.execute("commit")
    print("migration", round(time.perf_counter() - started, 2), "s")
    c.close()
