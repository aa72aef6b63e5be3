"""Per-reviewer order (issue 14): each cursor's seeded offset and count of items served, each label's position."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review_queue", "0006_label_reviewer_time"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="position",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="label",
            name="position",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="reviewercursor",
            name="offset",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="reviewercursor",
            name="served",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
    ]
