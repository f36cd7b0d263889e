"""Later changes, as an application makes them: a column with a default, a rename, a
widened column and an index."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("product", "stock", models.IntegerField(default=0)),
        migrations.RenameField("review", "body", "text"),
        migrations.AlterField("category", "slug", models.SlugField(max_length=80)),
        migrations.AddIndex("review", models.Index(fields=["stars"], name="review_stars")),
    ]
