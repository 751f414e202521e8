"""Pages one transaction of 256 duplicate counts writes to the WAL, two ways (docs/benchmarks.md,
"The store"): an UPDATE of `count` and `last_seen` in the Observation's own row (500 bytes,
indexed as the store's), and an upsert into a narrow table of repeats beside it. The counts
name every fifth of the last 2,000 of 20,000 rows, as the sink's benchmark mix does, and two in
three rows have been counted before; once with `last_seen` moving and once with it unchanged.

    python3 docs/scripts/sqlite-repeats-cost.py
"""
import os
import sqlite3
import tempfile
import time

ROWS = 20_000

SCHEMA = """
create table observations (id integer primary key, fingerprint blob, source text, severity int,
    namespace text, last_seen int, count int, message text);
create index observations_last_seen on observations (last_seen);
create index observations_source on observations (source, severity, id);
create index observations_namespace on observations (namespace, id);
create table observation_repeats (id integer primary key, repeats int not null,
    last_seen int not null);
"""

IN_ROW = "update observations set count = count + ?1, last_seen = max(last_seen, ?2) where id = ?3"
REPEATS = """insert into observation_repeats (id, repeats, last_seen)
    select ?3, ?1, ?2 where exists (select 1 from observations where id = ?3)
    on conflict (id) do update set repeats = repeats + excluded.repeats,
        last_seen = max(last_seen, excluded.last_seen)"""


def wal_pages(update, moves):
    path = os.path.join(tempfile.mkdtemp(), "t.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("pragma journal_mode=wal")
    c.execute("pragma synchronous=normal")
    c.execute("pragma wal_autocheckpoint=0")
    c.executescript(SCHEMA)
    c.execute("begin")
    for i in range(1, ROWS + 1):
        c.execute("insert into observations values (?, ?, 'falco', ?, ?, ?, 1, ?)",
                  (i, os.urandom(16), i % 4, "shop-%d" % (i % 40), 1000 + i, "x" * 420))
        if i % 3 and update == REPEATS:
            c.execute(REPEATS, (2, 1000 + i, i))
        elif i % 3:
            c.execute(IN_ROW, (2, 1000 + i, i))
    c.execute("commit")
    c.execute("pragma wal_checkpoint(truncate)")
    ids = list(range(ROWS - 2000, ROWS, 5))[:256]
    started = time.perf_counter()
    c.execute("begin")
    for i in ids:
        c.execute(update, (3, ROWS + 5000 if moves else 1000 + i, i))
    c.execute("commit")
    elapsed = time.perf_counter() - started
    # A WAL is a 32-byte header, then frames of a 24-byte header and a page.
    return (os.path.getsize(path + "-wal") - 32) // (24 + 4096), elapsed


for name, update in (("in the row", IN_ROW), ("repeats table", REPEATS)):
    for moves in (True, False):
        pages, elapsed = wal_pages(update, moves)
        print(f"{name:14} last_seen {'moves' if moves else 'same '}: "
              f"{pages:4} WAL pages, {elapsed * 1000:.1f} ms")
