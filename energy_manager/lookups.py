"""`field__any=values`: `field = ANY(%s)` with all the values as one array parameter on PostgreSQL.

Django's `__in` writes one placeholder per value; with psycopg's client-side binding a batch of a
thousand hubs then costs more in splitting the query text than the query itself (the hub
listener's profile: 60 ms per statement). Other databases (the SQLite demo) get the `IN` list.
Registered for every field by `devices.apps.DevicesConfig.ready`.
"""
from __future__ import annotations

from django.db.models import Field, ForeignObject, Lookup
from django.db.models.lookups import In


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        values = list(self.rhs)
        if connection.vendor != "postgresql":
            return In(self.lhs, values).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        array = [field.get_db_prep_value(v, connection, prepared=False) for v in values]
        return f"{lhs} = ANY(%s)", [*lhs_params, array]


def register() -> None:
    Field.register_lookup(AnyOf)
    ForeignObject.register_lookup(AnyOf)  # relations keep their own lookups (`home_id__any`)
