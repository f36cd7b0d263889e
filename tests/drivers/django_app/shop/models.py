"""A small shop: what a Django application's first migrations make (a foreign key per
model, unique and partial unique constraints, a CHECK, a descending index and the
`varchar_pattern_ops` indexes Django adds beside indexed text columns)."""
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=80)


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="products")
    title = models.CharField(max_length=200, db_index=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    created = models.DateTimeField(auto_now_add=True)
    tags = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    sku = models.CharField(max_length=20, null=True, unique=True)
    stock = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["category", "title"], name="uniq_cat_title"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="price_nonneg"),
            models.UniqueConstraint(fields=["title"], condition=models.Q(active=True),
                                    name="uniq_active_title"),
        ]
        indexes = [models.Index(fields=["-created"], name="prod_created_desc")]


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True)
    stars = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["stars"], name="review_stars")]
