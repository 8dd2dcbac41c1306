"""The SQL, and only the SQL. Each module owns the statements for one table family.

Statements use `{s}` for the schema; `Database.q` substitutes it once and caches the text.
"""
