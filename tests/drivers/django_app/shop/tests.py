"""Django's test runner over the shop app: a test database made and dropped (CREATE and
DROP DATABASE), and each test case in a transaction rolled back at its end, with
SET CONSTRAINTS ALL IMMEDIATE before the rollback, as Django's TestCase does."""
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.test import TestCase, TransactionTestCase

from shop.models import Category, Product


class ShopTests(TestCase):
    def test_create(self):
        c = Category.objects.create(name="b", slug="b")
        Product.objects.create(category=c, title="t", price=Decimal("1.00"))
        self.assertEqual(Product.objects.count(), 1)

    def test_each_test_starts_empty(self):
        self.assertEqual(Product.objects.count(), 0)

    def test_constraints_hold_inside_a_test(self):
        c = Category.objects.create(name="c", slug="c")
        with self.assertRaises(IntegrityError):
            with transaction.atomic():
                Product.objects.create(category=c, title="t", price=Decimal("-1"))


class ShopTransactionTests(TransactionTestCase):
    def test_commits_and_flushes(self):
        Category.objects.create(name="d", slug="d")
        self.assertEqual(Category.objects.count(), 1)
