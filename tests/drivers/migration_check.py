"""An application's schema migration, as SQLAlchemy 2 and Alembic run it (over psycopg 3):
create_all of models with indexes, UNIQUE, FOREIGN KEY and CHECK constraints; reflection
of all of them; Alembic's autogenerate comparison (which must find nothing to change);
an upgrade that adds a column, an index, a unique constraint and a foreign key, and the
downgrade that removes them; and the ORM's behaviour under those constraints.

Usage: migration_check.py <port>. Prints the reflected schema as JSON lines, then "ok":
the test runs it on weft and on PostgreSQL 15 and compares the two outputs."""
import json
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import (CheckConstraint, Column, ForeignKey, func, Index, Integer, MetaData, String, Text,
                        UniqueConstraint, create_engine, inspect, select, text)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{sys.argv[1]}/postgres")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(50), index=True)
    age: Mapped[int] = mapped_column(Integer, nullable=True)
    posts = relationship("Post", back_populates="author", cascade="all, delete-orphan",
                         passive_deletes=True)
    __table_args__ = (CheckConstraint("age >= 0", name="age_nonnegative"),)


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False)
    slug: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text, nullable=True)
    author = relationship("User", back_populates="posts")
    __table_args__ = (UniqueConstraint("user_id", "slug"),
                      Index("ix_posts_user_body", "user_id", "body"))


def schema():
    """The reflected schema, normalized so that weft and PostgreSQL can be compared."""
    insp = inspect(engine)
    out = []
    for t in sorted(insp.get_table_names()):
        out.append({"table": t,
                    "pk": insp.get_pk_constraint(t),
                    "indexes": sorted((i["name"], i["column_names"], bool(i["unique"]))
                                      for i in insp.get_indexes(t)),
                    "unique": sorted((u["name"], u["column_names"])
                                     for u in insp.get_unique_constraints(t)),
                    "fks": sorted((f["name"], f["constrained_columns"], f["referred_table"],
                                   f["referred_columns"], f["options"])
                                  for f in insp.get_foreign_keys(t)),
                    "checks": sorted(c["name"] for c in insp.get_check_constraints(t))})
    return out


def show(label):
    for t in schema():
        print(label, json.dumps(t, sort_keys=True, default=str))


with engine.begin() as c:
    c.execute(text("DROP TABLE IF EXISTS posts"))
    c.execute(text("DROP TABLE IF EXISTS users"))
Base.metadata.create_all(engine)
show("created")

# Alembic's autogenerate sees the database as the models describe it: nothing to do.
with engine.connect() as c:
    diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == [], diff

# An upgrade and its downgrade, as a migration script would run them (one transaction
# each, as Alembic runs migrations on PostgreSQL).
with engine.begin() as c:
    op = Operations(MigrationContext.configure(c))
    op.add_column("posts", Column("views", Integer, nullable=False,
                                                            server_default="0"))
    op.create_index("ix_posts_views", "posts", ["views"])
    op.add_column("users", Column("handle", String(30)))
    op.create_unique_constraint("uq_users_handle", "users", ["handle"])
    op.create_table("tags", Column("id", Integer, primary_key=True),
                    Column("post_id", Integer))
    op.create_foreign_key("fk_tags_post_id_posts", "tags", "posts", ["post_id"], ["id"],
                          ondelete="SET NULL")
    op.alter_column("users", "name", new_column_name="display_name")
show("upgraded")
with engine.begin() as c:
    op = Operations(MigrationContext.configure(c))
    op.alter_column("users", "display_name", new_column_name="name")
    op.drop_constraint("fk_tags_post_id_posts", "tags", type_="foreignkey")
    op.drop_table("tags")
    op.drop_constraint("uq_users_handle", "users", type_="unique")
    op.drop_column("users", "handle")
    op.drop_index("ix_posts_views", "posts")
    op.drop_column("posts", "views")
show("downgraded")
with engine.connect() as c:
    diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == [], diff

# The ORM under the constraints.
with Session(engine) as s:
    u = User(email="a@x.org", name="ann", age=30)
    u.posts = [Post(slug="hello", body="hi"), Post(slug="again")]
    s.add(u)
    s.commit()
    uid = u.id
for bad in (User(email="a@x.org", name="dup"), User(email="b@x.org", name="neg", age=-1),
            Post(user_id=999, slug="orphan")):
    with Session(engine) as s:
        s.add(bad)
        try:
            s.commit()
            raise AssertionError(f"{bad} was accepted")
        except IntegrityError as e:
            print("refused", type(bad).__name__, e.orig.sqlstate)
with Session(engine) as s:
    s.add(Post(user_id=uid, slug="hello"))
    try:
        s.commit()
        raise AssertionError("a duplicate (user_id, slug) was accepted")
    except IntegrityError as e:
        print("refused duplicate slug", e.orig.sqlstate)
with Session(engine) as s:
    s.delete(s.get(User, uid))
    s.commit()
    assert s.scalar(select(func.count()).select_from(Post)) == 0
print("ok")
