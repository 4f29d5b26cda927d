package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ---- trust policies

const trustCols = `name, issuer, jwks_url, jwks, audiences, claims, account, project, role, ttl, scopes, created_at, updated_at`

// trustArgs encodes p's columns after its name.
func trustArgs(p gatehouse.TrustPolicy) ([]any, error) {
	var e encoder
	aud, scopes := e.list(p.Audiences), e.list(p.Scopes)
	claims := e.json(p.Claims)
	if p.Claims == nil {
		claims = "{}"
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return []any{p.Issuer, p.JWKSURL, string(p.JWKS), aud, claims, p.Account, p.Project, p.Role,
		p.TTL, scopes, nanos(p.CreatedAt), nanos(p.UpdatedAt)}, nil
}

func scanTrust(sc scanner) (gatehouse.TrustPolicy, error) {
	var (
		p                       gatehouse.TrustPolicy
		jwks, aud, claims, scps string
		created, updated        int64
	)
	err := sc.Scan(&p.Name, &p.Issuer, &p.JWKSURL, &jwks, &aud, &claims, &p.Account, &p.Project, &p.Role,
		&p.TTL, &scps, &created, &updated)
	if err != nil {
		return p, err
	}
	if jwks != "" {
		p.JWKS = []byte(jwks)
	}
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	p.Audiences, p.Scopes = []string{}, []gatehouse.Scope{}
	p.Claims = map[string]gatehouse.ClaimPatterns{}
	if err := fromJSON(aud, &p.Audiences); err != nil {
		return p, err
	}
	if err := fromJSON(scps, &p.Scopes); err != nil {
		return p, err
	}
	if claims != "{}" {
		if err := fromJSON(claims, &p.Claims); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (t *tx) CreateTrustPolicy(ctx context.Context, p gatehouse.TrustPolicy) error {
	args, err := trustArgs(p)
	if err != nil {
		return err
	}
	return t.insert(ctx, "trust policy "+strconv.Quote(p.Name)+" already exists",
		`INSERT INTO trust_policies (`+trustCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		append([]any{p.Name}, args...)...)
}

func (t *tx) GetTrustPolicy(ctx context.Context, name string) (gatehouse.TrustPolicy, error) {
	return get(ctx, t, "trust policy", scanTrust, `SELECT `+trustCols+` FROM trust_policies WHERE name = $1`, name)
}

func (t *tx) ListTrustPolicies(ctx context.Context) ([]gatehouse.TrustPolicy, error) {
	return list(ctx, t, scanTrust, `SELECT `+trustCols+` FROM trust_policies ORDER BY name`)
}

// UpdateTrustPolicy replaces everything but the name and the creation time.
func (t *tx) UpdateTrustPolicy(ctx context.Context, p gatehouse.TrustPolicy) error {
	args, err := trustArgs(p)
	if err != nil {
		return err
	}
	args = append(args[:10], args[11], p.Name) // created_at stays
	return t.execOne(ctx, "trust policy", `UPDATE trust_policies SET issuer = $1, jwks_url = $2, jwks = $3,
		audiences = $4, claims = $5, account = $6, project = $7, role = $8, ttl = $9, scopes = $10, updated_at = $11
		WHERE name = $12`, args...)
}

func (t *tx) DeleteTrustPolicy(ctx context.Context, name string) error {
	return t.execOne(ctx, "trust policy", `DELETE FROM trust_policies WHERE name = $1`, name)
}

// DeleteTokensCreatedBy deletes and returns the tokens in one statement.
func (t *tx) DeleteTokensCreatedBy(ctx context.Context, createdBy string) ([]gatehouse.Token, error) {
	return list(ctx, t, scanToken, `WITH gone AS (DELETE FROM tokens WHERE created_by = $1 RETURNING `+tokenCols+`)
		SELECT `+tokenCols+` FROM gone ORDER BY issued_at DESC, id`, createdBy)
}

// ---- exchange replays

func (t *tx) AddExchangeReplay(ctx context.Context, key string, expiresAt time.Time) error {
	return t.insert(ctx, "subject token already exchanged",
		`INSERT INTO exchange_replays (key, expires_at) VALUES ($1, $2)`, key, nanos(expiresAt))
}

func (t *tx) ExchangeReplayed(ctx context.Context, key string) (bool, error) {
	n, err := get(ctx, t, "exchange replay", func(sc scanner) (int64, error) {
		var n int64
		return n, sc.Scan(&n)
	}, `SELECT COUNT(*) FROM exchange_replays WHERE key = $1`, key)
	return n > 0, err
}

func (t *tx) PruneExchangeReplays(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.exec(ctx, `DELETE FROM exchange_replays WHERE expires_at <= $1`, nanos(before))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) ListExchangeReplays(ctx context.Context) ([]gatehouse.ExchangeReplay, error) {
	return list(ctx, t, func(sc scanner) (gatehouse.ExchangeReplay, error) {
		var r gatehouse.ExchangeReplay
		var exp int64
		err := sc.Scan(&r.Key, &exp)
		r.ExpiresAt = fromNanos(exp)
		return r, err
	}, `SELECT key, expires_at FROM exchange_replays ORDER BY key`)
}
