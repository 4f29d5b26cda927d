-- What a request event was about and how it was decided: via says how it
-- was allowed or refused (policy, self, scope, filter), route is the
-- matched route (the API route, or the forward-auth route for a request
-- behind a proxy), account is the account the event concerns (the owner
-- of the token that made the request, or whose token or record changed),
-- whoever the actor was.
ALTER TABLE events ADD COLUMN via TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN route TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN account TEXT NOT NULL DEFAULT '';
CREATE INDEX events_account ON events (account, id);
