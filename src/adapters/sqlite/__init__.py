"""Durable state in an embedded SQLite database file in the data directory (stdlib ``sqlite3``)."""
