"""psycopg 3 against weft: DDL, bound parameters of every type weft stores, text and binary
results, a write conflict (40001) and its retry. Usage: psycopg_check.py <port>"""
import datetime
import decimal
import sys
import uuid

import psycopg
from psycopg import errors

DSN = f"host=127.0.0.1 port={sys.argv[1]} user=postgres dbname=postgres"

ROW = (
    True, 2, 4, 8, 1.5, 2.25, decimal.Decimal("12.34"), "text", "vc", "abc", b"\x00\x01\xff",
    datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
    datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), {"a": 1}, {"b": [1, 2]},
)
COLS = "b,i2,i4,i8,f4,f8,n,t,vc,bp,by,d,ts,tz,u,j,jb"


def main():
    from psycopg.types.json import Json, Jsonb

    conn = psycopg.connect(DSN, autocommit=True)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS drv")
    cur.execute(
        "CREATE TABLE drv (id serial PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint,"
        " f4 real, f8 double precision, n numeric(10,2), t text, vc varchar(20), bp char(3),"
        " by bytea, d date, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb)"
    )
    params = list(ROW[:15]) + [Json(ROW[15]), Jsonb(ROW[16])]
    cur.execute(
        f"INSERT INTO drv ({COLS}) VALUES ({','.join(['%s'] * 17)}) RETURNING id", params
    )
    assert cur.fetchone() == (1,)
    # Server-side prepared (binary parameters) too.
    cur.execute(
        f"INSERT INTO drv ({COLS}) VALUES ({','.join(['%b'] * 17)}) RETURNING id",
        params,
        prepare=True,
    )
    assert cur.fetchone() == (2,)
    # RETURNING keeps its statement's command tag (PostgreSQL's), in both protocols.
    assert cur.statusmessage == "INSERT 0 1", cur.statusmessage
    cur.execute("UPDATE drv SET i2 = i2 WHERE id > %s RETURNING id", (0,), prepare=True)
    assert cur.statusmessage == "UPDATE 2" and cur.rowcount == 2, cur.statusmessage
    cur.execute("UPDATE drv SET i2 = i2 WHERE id > 5 RETURNING id")
    assert cur.statusmessage == "UPDATE 0" and cur.fetchall() == [], cur.statusmessage
    for binary in (False, True):
        c = conn.cursor(binary=binary)
        for rid in (1, 2):
            c.execute(f"SELECT {COLS} FROM drv WHERE id = %s", (rid,))
            got = c.fetchone()
            assert got == ROW, f"binary={binary} id={rid}: {got!r} != {ROW!r}"
    cur.execute("SELECT count(*) FROM drv WHERE u = %s", (ROW[14],))
    assert cur.fetchone() == (1 * 2,)

    # A conflict: two transactions write the same row; the second to commit gets 40001,
    # and a retry succeeds.
    cur.execute("CREATE TABLE IF NOT EXISTS acct (id int PRIMARY KEY, bal int)")
    cur.execute("INSERT INTO acct VALUES (1, 100) ON CONFLICT DO NOTHING")
    a = psycopg.connect(DSN)
    b = psycopg.connect(DSN)
    a.execute("UPDATE acct SET bal = bal - 10 WHERE id = 1")
    b.execute("UPDATE acct SET bal = bal - 20 WHERE id = 1")
    a.commit()
    try:
        b.commit()
        raise AssertionError("the second commit must fail")
    except errors.SerializationFailure as e:
        assert e.sqlstate == "40001"
    for attempt in range(5):
        try:
            with b.transaction():
                b.execute("UPDATE acct SET bal = bal - 20 WHERE id = 1")
            break
        except errors.SerializationFailure:
            continue
    assert conn.execute("SELECT bal FROM acct WHERE id = 1").fetchone() == (70,)

    # psycopg prepares a query after five runs; a ROLLBACK of a failed transaction then
    # makes it send DEALLOCATE ALL, and the prepared queries must go on working.
    p = psycopg.connect(DSN)
    for round_ in range(2):
        for i in range(8):
            assert p.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
        try:
            p.execute("SELECT 1 / 0")
            raise AssertionError("division by zero must fail")
        except errors.DivisionByZero:
            pass
        p.rollback()
    p.execute("DEALLOCATE ALL")
    assert p.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)
    p.rollback()
    p.close()

    # COPY through psycopg.
    with cur.copy("COPY acct (id, bal) FROM STDIN") as cp:
        cp.write_row((2, 5))
        cp.write_row((3, 6))
    assert conn.execute("SELECT sum(bal) FROM acct").fetchone() == (81,)
    with cur.copy("COPY (SELECT id, bal FROM acct ORDER BY id) TO STDOUT") as cp:
        rows = [r for r in cp.rows()]
    assert rows == [("1", "70"), ("2", "5"), ("3", "6")], rows

    # Server-side (named) cursors, as Django's iterator() and SQLAlchemy's yield_per use
    # them: DECLARE, the portal described by name, FETCH in pages, pg_cursors, CLOSE.
    tx = psycopg.connect(DSN)  # named cursors live in transactions
    with tx.cursor(name="pages") as sc:
        sc.itersize = 2
        sc.execute("SELECT id, bal FROM acct WHERE id >= %s ORDER BY id", (1,))
        assert [d.name for d in sc.description] == ["id", "bal"]
        assert list(sc) == [(1, 70), (2, 5), (3, 6)]
    tx.commit()
    with tx.cursor(name="held", withhold=True) as sc:
        sc.execute("SELECT count(*) FROM acct")
        tx.commit()  # a cursor WITH HOLD outlives its transaction
        assert sc.fetchone() == (3,)
    assert tx.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)
    tx.commit()
    # A scrollable named cursor: scroll() sends MOVE; FETCH's and MOVE's command tags.
    with tx.cursor(name="back", scrollable=True) as sc:
        sc.execute("SELECT id FROM acct ORDER BY id")
        assert sc.fetchmany(3) == [(1,), (2,), (3,)]
        sc.scroll(-2)
        assert sc.fetchone() == (2,)
        sc.scroll(0, mode="absolute")
        assert sc.fetchone() == (1,)
    raw = tx.cursor()
    raw.execute("DECLARE m SCROLL CURSOR FOR SELECT id FROM acct ORDER BY id")
    raw.execute("FETCH 2 FROM m")
    assert raw.statusmessage == "FETCH 2", raw.statusmessage
    raw.execute("MOVE LAST IN m")
    assert raw.statusmessage == "MOVE 1", raw.statusmessage
    raw.execute("FETCH BACKWARD ALL FROM m")
    assert raw.fetchall() == [(2,), (1,)] and raw.statusmessage == "FETCH 2"
    tx.rollback()
    tx.close()
    print("psycopg ok")


main()
