"""SQLAlchemy 2 (over psycopg 3) against weft: create_all, reflection of the tables it made
(columns, types, nullability, defaults, primary keys), ORM inserts with SERIAL keys and
queries. Usage: sqlalchemy_check.py <port>"""
import datetime
import decimal
import sys

from sqlalchemy import (BigInteger, Boolean, DateTime, ForeignKey, Integer, Numeric, String,
                        Text, create_engine, inspect, select, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{sys.argv[1]}/postgres")


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    author_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    price: Mapped[decimal.Decimal] = mapped_column(Numeric(8, 2), nullable=True)
    published: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), nullable=True)


Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)

insp = inspect(engine)
assert sorted(insp.get_table_names()) == ["authors", "books"], insp.get_table_names()
cols = {c["name"]: c for c in insp.get_columns("authors")}
assert list(cols) == ["id", "name", "active"], list(cols)
assert str(cols["name"]["type"]) == "VARCHAR(50)", cols["name"]["type"]
assert cols["name"]["nullable"] is False and cols["active"]["nullable"] is False
assert "nextval" in (cols["id"]["default"] or ""), cols["id"]
assert insp.get_pk_constraint("books")["constrained_columns"] == ["id"]
bcols = {c["name"]: str(c["type"]) for c in insp.get_columns("books")}
assert bcols["price"] == "NUMERIC(8, 2)" and bcols["id"] == "BIGINT", bcols

with Session(engine) as s:
    a = Author(name="Ursula")
    b = Author(name="Octavia", active=False)
    s.add_all([a, b])
    s.flush()
    assert a.id == 1 and b.id == 2, (a.id, b.id)
    s.add(Book(author_id=a.id, title="The Dispossessed", price=decimal.Decimal("9.99"),
               published=datetime.datetime(1974, 5, 1, tzinfo=datetime.timezone.utc)))
    s.add(Book(author_id=b.id, title="Kindred"))
    s.commit()

with Session(engine) as s:
    rows = s.execute(select(Author.name, func.count(Book.id)).join(Book, Book.author_id == Author.id)
                     .group_by(Author.name).order_by(Author.name)).all()
    assert rows == [("Octavia", 1), ("Ursula", 1)], rows
    book = s.scalars(select(Book).where(Book.title.like("The%"))).one()
    assert book.price == decimal.Decimal("9.99") and book.published.year == 1974
    book.price = decimal.Decimal("12.50")
    s.commit()
    assert s.scalar(select(Book.price).where(Book.id == book.id)) == decimal.Decimal("12.50")
    s.delete(book)
    s.commit()
    assert s.scalar(select(func.count()).select_from(Book)) == 1
print("sqlalchemy ok")
