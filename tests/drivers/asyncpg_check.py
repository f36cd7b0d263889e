"""asyncpg against weft: its type introspection, bound parameters of every type weft stores
(asyncpg speaks binary), a pool (whose connection reset runs on release), a write conflict
(40001) and its retry. Usage: asyncpg_check.py <port>"""
import asyncio
import datetime
import decimal
import json
import sys
import uuid

import asyncpg

PORT = int(sys.argv[1])

ROW = (
    True, 2, 4, 8, 1.5, 2.25, decimal.Decimal("12.34"), "text", "vc", "abc", b"\x00\x01\xff",
    datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
    datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), json.dumps({"a": 1}), json.dumps({"b": 2}),
)
COLS = "b,i2,i4,i8,f4,f8,n,t,vc,bp,by,d,ts,tz,u,j,jb"


async def main():
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="postgres", database="postgres")
    await conn.execute("DROP TABLE IF EXISTS drv")
    await conn.execute(
        "CREATE TABLE drv (id bigserial PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint,"
        " f4 real, f8 double precision, n numeric(10,2), t text, vc varchar(20), bp char(3),"
        " by bytea, d date, ts timestamp, tz timestamptz, u uuid, j json, jb jsonb)"
    )
    placeholders = ",".join(f"${i}" for i in range(1, 18))
    rid = await conn.fetchval(f"INSERT INTO drv ({COLS}) VALUES ({placeholders}) RETURNING id", *ROW)
    assert rid == 1, rid
    got = await conn.fetchrow(f"SELECT {COLS} FROM drv WHERE id = $1", rid)
    got = tuple(got)
    expected = list(ROW)
    expected[15] = json.loads(expected[15]) if isinstance(got[15], dict) else expected[15]
    assert got[:15] == tuple(expected[:15]), f"{got!r}\n{tuple(expected)!r}"
    assert json.loads(got[15]) == {"a": 1} and json.loads(got[16]) == {"b": 2}, got[15:]
    stmt = await conn.prepare("SELECT i4 + $1 FROM drv WHERE id = $2")
    assert await stmt.fetchval(10, 1) == 14

    # A pool: connections are reset when released.
    pool = await asyncpg.create_pool(host="127.0.0.1", port=PORT, user="postgres",
                                     database="postgres", min_size=1, max_size=2)
    async with pool.acquire() as c:
        assert await c.fetchval("SELECT count(*) FROM drv") == 1
    async with pool.acquire() as c:
        await c.execute("SET application_name = 'pooled'")
    await pool.close()

    # Conflict and retry.
    await conn.execute("CREATE TABLE acct (id int PRIMARY KEY, bal int)")
    await conn.execute("INSERT INTO acct VALUES (1, 100)")
    a = await asyncpg.connect(host="127.0.0.1", port=PORT, user="postgres", database="postgres")
    b = await asyncpg.connect(host="127.0.0.1", port=PORT, user="postgres", database="postgres")
    ta, tb = a.transaction(), b.transaction()
    await ta.start()
    await tb.start()
    await a.execute("UPDATE acct SET bal = bal - 10 WHERE id = 1")
    await b.execute("UPDATE acct SET bal = bal - 20 WHERE id = 1")
    await ta.commit()
    try:
        await tb.commit()
        raise AssertionError("the second commit must fail")
    except asyncpg.exceptions.SerializationError as e:
        assert e.sqlstate == "40001"
    for _ in range(5):
        try:
            async with b.transaction():
                await b.execute("UPDATE acct SET bal = bal - 20 WHERE id = 1")
            break
        except asyncpg.exceptions.SerializationError:
            continue
    assert await conn.fetchval("SELECT bal FROM acct WHERE id = 1") == 70
    for c in (a, b, conn):
        await c.close()
    print("asyncpg ok")


asyncio.run(main())
