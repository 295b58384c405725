"""Assessment records (opt-in): a person's saved answers in a database (SQLite by default, PostgreSQL by URL),
the dashboard's users, and the audit of who saved, viewed or erased what. See ``database`` (engine, schema,
transactions, failures as sentences), ``models`` (the tables), ``migrations`` (Alembic), ``assessments`` (save,
history, erasure), ``users`` (the users file) and ``settings`` (where they live)."""
