"""A Django application's migrations and ORM, as `manage.py migrate` runs them (over
psycopg 3): Django's own apps (auth, contenttypes, sessions, admin) and a shop app whose
migrations make foreign keys, unique and partial unique constraints, a CHECK, a descending
index and Django's `varchar_pattern_ops` indexes, then add a column, rename one, widen one
and add an index; the migrations unapplied to zero and applied again; the ORM under those
constraints; Django's own introspection of the result; and Django's test runner, which
makes and drops a test database and wraps each test in a transaction.

Usage: django_check.py <port>. Prints the introspected schema as JSON lines, then "ok":
the test runs it on weft and on PostgreSQL 15 and compares the two outputs."""
import json
import os
import sys
from decimal import Decimal

import django
from django.conf import settings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "django_app"))
settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.admin",
                    "django.contrib.messages", "shop"],
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres",
                           "USER": "postgres", "HOST": "127.0.0.1", "PORT": sys.argv[1]}},
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    # What the admin's system checks (which the test runner runs) ask for.
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages"]}}],
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402

call_command("migrate", verbosity=0)
call_command("migrate", "shop", "zero", verbosity=0)
call_command("migrate", verbosity=0)

from django.contrib.auth.models import User  # noqa: E402
from shop.models import Category, Product, Review  # noqa: E402

books = Category.objects.create(name="books", slug="books")
dune = Product.objects.create(category=books, title="Dune", price=Decimal("9.99"), tags=["sf"])
Product.objects.create(category=books, title="Emma", price=Decimal("5.00"), active=False)
# A second inactive "Emma" is allowed by the partial unique constraint, but not a second
# title in one category (uniq_cat_title) nor a negative price (price_nonneg).
Product.objects.create(category=Category.objects.create(name="old", slug="old"), title="Emma",
                       price=Decimal("1.00"), active=False)
Review.objects.create(product=dune, stars=5, text="great")
for bad in [dict(category=books, title="Dune", price=Decimal("1")),
            dict(category=books, title="X", price=Decimal("-1"), sku="n"),
            dict(category=books, title="Y", price=Decimal("1"), sku=None),
            dict(category=books, title="Z", price=Decimal("1"), sku=None)]:
    try:
        with transaction.atomic():
            Product.objects.create(**bad)
        print(json.dumps(["created", bad["title"]]))
    except IntegrityError as e:
        print(json.dumps(["refused", bad["title"], e.__cause__.sqlstate]))
print(json.dumps(list(Product.objects.filter(category__name="books")
                      .order_by("-created", "title").values_list("title", flat=True))))
print(json.dumps(Product.objects.filter(tags__contains=["sf"]).count()))
print(json.dumps(list(Product.objects.filter(title__startswith="E")
                      .order_by("id").values_list("title", "active"))))
User.objects.create_user("ann", "a@x", "pw")
print(json.dumps(User.objects.get(username="ann").check_password("pw")))
books.delete()
print(json.dumps([Review.objects.get().product_id, Product.objects.count()]))

# Django's introspection of what the migrations made.
with connection.cursor() as cur:
    for table in sorted(connection.introspection.table_names(cur)):
        if not table.startswith("shop_"):
            continue
        cols = [(c.name, c.type_code, c.null_ok, c.default)
                for c in connection.introspection.get_table_description(cur, table)]
        print(json.dumps([table, "columns", sorted(cols)]))
        cons = connection.introspection.get_constraints(cur, table)
        # Unnamed constraints get generated names whose hash part is the same on both.
        shown = {name: {k: v for k, v in sorted(c.items()) if k != "definition"}
                 for name, c in cons.items()}
        print(json.dumps([table, "constraints", shown], sort_keys=True, default=str))
        rels = connection.introspection.get_relations(cur, table)
        print(json.dumps([table, "relations", sorted(rels.items())]))
# Django's test runner: a test database of its own, each test in a transaction.
from django.test.utils import get_runner  # noqa: E402

failures = get_runner(settings)(verbosity=0).run_tests(["shop"])
print(json.dumps(["test runner failures", failures]))
print("ok")
