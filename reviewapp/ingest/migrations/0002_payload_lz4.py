"""Store transcript payloads with lz4 TOAST compression where the server supports it.

Payloads are a few KB of JSON, compressed on every insert. lz4 compresses several
times faster than PostgreSQL's default pglz, which is most of the server-side cost
of a bulk ingest. Servers built without lz4 keep pglz; nothing else changes.
"""

from django.db import migrations


def use_lz4(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
        if cursor.fetchone():
            cursor.execute("ALTER TABLE ingest_item ALTER COLUMN payload SET COMPRESSION lz4")


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]

    operations = [migrations.RunPython(use_lz4, migrations.RunPython.noop)]
