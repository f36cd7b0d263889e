"""psycopg's named (server-side) cursor against weft: DECLARE and FETCH FORWARD itersize
over a 10-million-row result, in constant client memory (the process's peak resident size
is checked). Usage: named_cursor_check.py <port> <rows>"""
import resource
import sys

import psycopg

port, rows = sys.argv[1], int(sys.argv[2])
with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres") as conn:
    with conn.cursor(name="big") as cur:
        cur.itersize = 10000
        cur.execute(
            f"SELECT g, 'row ' || g AS label FROM generate_series(1, {rows}) g WHERE g > %s", (0,)
        )
        n = total = 0
        for g, label in cur:
            n += 1
            total += g
            if label != f"row {g}":
                raise AssertionError(f"row {n}: {label}")
    assert (n, total) == (rows, rows * (rows + 1) // 2), (n, total)
    # The cursor is gone with its transaction.
    conn.commit()
    assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"read {n} rows; client peak resident {peak} MiB")
assert peak < 200, f"the client held {peak} MiB"
print("named cursor ok")
