"""The cost of one duplicate-count update in SQLite, three ways (docs/benchmarks.md, "End to
end"): a plain UPDATE, UPDATE ... RETURNING the row's key, and a plain UPDATE with a trigger
keeping a counts table. 20,000 updates, 256 per transaction, into 200,000 rows of 500 bytes.

    python3 docs/scripts/sqlite-update-cost.py
"""
import os
import random
import sqlite3
import tempfile
import time


def setup(path, trigger):
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("pragma journal_mode=wal")
    c.execute("pragma synchronous=normal")
    c.execute("create table o(id integer primary key, source text, severity int, count int,"
              " last_seen int, seq int, pad text)")
    c.execute("create index o_seq on o(seq)")
    c.execute("create index o_ls on o(last_seen)")
    c.execute("create table oc(source text, severity int, n int, occ int,"
              " primary key(source, severity)) without rowid")
    c.execute("begin")
    for i in range(200_000):
        c.execute("insert into o values(null, ?, ?, 1, ?, ?, ?)",
                  ("falco" if i % 3 else "trivy", i % 5, i, i, "x" * 500))
    c.execute("insert into oc select source, severity, count(*), sum(count) from o group by 1, 2")
    c.execute("commit")
    if trigger:
        c.execute("create trigger t after update of count on o begin update oc set"
                  " occ = occ + new.count - old.count"
                  " where source = new.source and severity = new.severity; end")
    return c


for variant in ["plain", "returning", "trigger"] * 2:
    with tempfile.TemporaryDirectory() as d:
        c = setup(os.path.join(d, "u.db"), variant == "trigger")
        random.seed(1)
        seqs = sorted(random.sample(range(150_000, 200_000), 20_000))
        sql = "update o set count = count + 1, last_seen = max(last_seen, ?) where seq = ?"
        if variant == "returning":
            sql += " returning source, severity"
        started = time.perf_counter()
        for k in range(0, len(seqs), 256):
            c.execute("begin")
            for s in seqs[k:k + 256]:
                c.execute(sql, (300_000 + s, s)).fetchall()
            c.execute("commit")
        print(variant, round((time.perf_counter() - started) / len(seqs) * 1e6, 2), "us/update")
        c.close()
