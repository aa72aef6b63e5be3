from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review_queue", "0005_tallies"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="label",
            index=models.Index(fields=["study", "reviewer", "submitted_at", "id"], name="label_reviewer_time"),
        ),
    ]
