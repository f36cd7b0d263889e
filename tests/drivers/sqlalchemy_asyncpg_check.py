"""SQLAlchemy 2 over asyncpg against weft and PostgreSQL: the asyncpg dialect casts every
bound parameter (`$1::INTEGER`, `$2::VARCHAR`), and asyncpg encodes each value in the binary
format of the type the server describes for it, so the server must give `$n::type` the
cast's type, as PostgreSQL does. Prints the parameter and result types asyncpg is told for
a set of statements, then runs an ORM flow. Usage: sqlalchemy_asyncpg_check.py <port>"""
import asyncio
import datetime
import decimal
import sys
import uuid

import asyncpg
from sqlalchemy import (BigInteger, Boolean, Date, DateTime, Integer, Numeric, String, Text,
                        func, select, update)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PORT = sys.argv[1]

DESCRIBED = [
    "SELECT $1::int4",
    "SELECT $1::int2, $2::int8, $3::float8, $4::bool",
    "SELECT CAST($1 AS bigint)",
    "SELECT $1::numeric(10, 2)",
    "SELECT $1::date, $2::timestamptz, $3::timestamp",
    "SELECT $1::text, $2::jsonb, $3::bytea",
    "SELECT $1::varchar IS NULL, $2::varchar(20) IS NULL, $3::uuid IS NULL",
    "SELECT $1::varchar, $2::varchar(20), $3::uuid",
    "SELECT $1::text[]",
    "SELECT ($1::int4 + 1)::int4",
    "SELECT id FROM sa_items WHERE id = $1::INTEGER",
    "SELECT id FROM sa_items WHERE id = ANY($1)",
    "SELECT id FROM sa_items WHERE name = $1::VARCHAR AND qty > $2::INTEGER",
    "INSERT INTO sa_items (id, name, qty) VALUES ($1::INTEGER, $2::VARCHAR, $3::INTEGER)",
    "UPDATE sa_items SET qty = $1::INTEGER WHERE id = $2::INTEGER",
    "SELECT $1::uuid[]",
    "INSERT INTO sa_uuids VALUES ($1, $2)",
    "SELECT us FROM sa_uuids",
]


async def described():
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="postgres",
                                 database="postgres")
    await conn.execute("DROP TABLE IF EXISTS sa_items")
    await conn.execute("CREATE TABLE sa_items (id int PRIMARY KEY, name varchar(20), qty int)")
    await conn.execute("DROP TABLE IF EXISTS sa_uuids")
    await conn.execute("CREATE TABLE sa_uuids (id int PRIMARY KEY, us uuid[])")
    for q in DESCRIBED:
        st = await conn.prepare(q)
        params = [t.name for t in st.get_parameters()]
        cols = [a.type.name for a in st.get_attributes()]
        print(f"{q}: parameters {params} columns {cols}")
    # Values of those types, bound in binary and read back.
    row = await conn.fetchrow(
        "SELECT $1::int4 + 1, $2::int8 * 2, $3::date, $4::bool, $5::text[], $6::numeric(10, 2)",
        41, 2**40, datetime.date(2024, 2, 29), True, ["a", "b"], decimal.Decimal("1.25"))
    print("bound:", list(row))
    # uuid[]: bound and read as arrays of uuids, in binary.
    us = [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None, uuid.UUID(int=1)]
    await conn.execute("INSERT INTO sa_uuids VALUES ($1, $2)", 1, us)
    await conn.execute("INSERT INTO sa_uuids VALUES ($1, $2)", 2, [])
    rows = await conn.fetch("SELECT id, us FROM sa_uuids ORDER BY id")
    print("uuid[]:", [list(r) for r in rows])
    print("uuid[] bound:", await conn.fetchval("SELECT $1::uuid[]", us[:1]))
    print("uuid[] text:", await conn.fetchval("SELECT us::text FROM sa_uuids WHERE id = 1"))
    await conn.execute("DROP TABLE sa_uuids")
    await conn.execute("DROP TABLE sa_items")
    await conn.close()


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "sa_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), nullable=False)
    balance: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2))
    big: Mapped[int] = mapped_column(BigInteger, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    opened: Mapped[datetime.date] = mapped_column(Date, nullable=True)
    seen: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str] = mapped_column(Text, nullable=True)


async def orm():
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{PORT}/postgres")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as s:
        s.add_all([
            Account(id=1, owner="ada", balance=decimal.Decimal("100.50"), big=2**40,
                    opened=datetime.date(2020, 1, 2),
                    seen=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)),
            Account(id=2, owner="grace", balance=decimal.Decimal("7.25"), active=False),
            Account(id=3, owner="edsger", balance=decimal.Decimal("0.00"), note="x"),
        ])
        await s.commit()
    async with AsyncSession(engine) as s:
        rich = (await s.scalars(select(Account.owner).where(Account.balance > 5)
                                .order_by(Account.id))).all()
        print("rich:", rich)
        a = await s.get(Account, 1)
        print("get:", a.owner, a.balance, a.big, a.active, a.opened, a.seen.isoformat())
        await s.execute(update(Account).where(Account.id == 2).values(balance=Account.balance + 1))
        await s.commit()
        total = await s.scalar(select(func.sum(Account.balance)))
        print("total:", total)
        some = (await s.scalars(select(Account.id).where(Account.id.in_([1, 3]))
                                .order_by(Account.id))).all()
        print("in:", some)
        inactive = await s.scalar(select(func.count()).select_from(Account)
                                  .where(Account.active.is_(False)))
        print("inactive:", inactive)
        await s.delete(a)
        await s.commit()
        print("left:", await s.scalar(select(func.count()).select_from(Account)))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
    await engine.dispose()


async def main():
    await described()
    await orm()
    print("sqlalchemy asyncpg ok")


asyncio.run(main())
