"""State shared by every instance in a PostgreSQL database (asyncpg): the client registry."""
