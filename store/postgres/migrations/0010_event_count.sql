-- Counted reads: an event may stand for several alike allowed reads of
-- one minute (gatehouse.Event.Count); every event before this stands for
-- one request.
ALTER TABLE events ADD COLUMN count BIGINT NOT NULL DEFAULT 1 CHECK (count >= 1);
