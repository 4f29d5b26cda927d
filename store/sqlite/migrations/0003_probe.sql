-- One row that Ping rewrites: a write probe needs something of its own to
-- write, away from the domain tables.
CREATE TABLE probe (
	id INTEGER PRIMARY KEY,
	n  INTEGER NOT NULL
);
