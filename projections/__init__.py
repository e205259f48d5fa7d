"""Read models: projections, their views on SQLite and PostgreSQL, and the workers."""
