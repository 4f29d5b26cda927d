-- The change feed: one row per committed change that the request path
-- caches (a token, an account, the policy), for replicas and caches to
-- follow by seq. Seqs come from change_head, which every recording
-- transaction advances, so they follow commit order; at is Unix
-- nanoseconds like every time here.
CREATE TABLE changes (
	seq  INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	at   INTEGER NOT NULL
);

-- The greatest seq handed out; one row. Pruning the feed leaves it alone.
CREATE TABLE change_head (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT INTO change_head (id, seq) VALUES (1, 0);
