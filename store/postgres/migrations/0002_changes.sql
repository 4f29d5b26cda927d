-- The change feed: one row per committed change that the request path
-- caches (a token, an account, the policy), which replicas follow by seq.
--
-- Seqs are not from a sequence: sequence values are taken at the call, not
-- at commit, so a reader could see seq 8 committed while 7 is still to
-- come, and skip it for good. They come from change_head instead, which
-- every recording transaction advances (UPDATE ... RETURNING) and holds
-- locked until it ends: the next recorder waits for it, so a greater seq
-- always commits later. A rolled-back transaction hands its seqs back.
CREATE TABLE changes (
	seq  BIGINT PRIMARY KEY,
	kind TEXT NOT NULL,
	key  TEXT COLLATE "C" NOT NULL,
	at   BIGINT NOT NULL
);

-- The greatest seq committed; one row. Pruning the feed leaves it alone.
CREATE TABLE change_head (
	only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
	seq      BIGINT NOT NULL
);
INSERT INTO change_head (seq) VALUES (0);
