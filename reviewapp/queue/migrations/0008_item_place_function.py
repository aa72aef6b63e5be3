"""Per-reviewer order (issue 14): the SQL twin of ``reviewapp.queue.order.feistel_place``.

Bulk inserts of quota rows place items in SQL, without a round trip per item; a test
(tests/queue/test_order.py) checks that this function and the Python one agree.
"""

from django.db import migrations

PLACE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION reviewapp_item_place(key bigint, value bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    l bigint;
    r bigint;
    t bigint;
    k bigint;
    f bigint;
BEGIN
    IF value < 0 OR value >= 274877906944 THEN  -- 2^38, as order.DOMAIN
        RETURN value;
    END IF;
    l := value >> 19;
    r := value & 524287;
    FOR i IN 0..3 LOOP
        k := ((key >> (i * 13)) # (i * 40503)) & 549755813887;
        t := ((r # (k & 524287)) * 2654435761) & 4294967295;
        t := t # (t >> 16);
        t := ((t & 134217727) * 73244475) & 4294967295;
        t := t # (t >> 16);
        f := (t # (k >> 19)) & 524287;
        t := r;
        r := l # f;
        l := t;
    END LOOP;
    RETURN (l << 19) | r;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("review_queue", "0007_order_positions")]

    operations = [
        migrations.RunSQL(PLACE_FUNCTION, reverse_sql="DROP FUNCTION reviewapp_item_place(bigint, bigint)"),
    ]
