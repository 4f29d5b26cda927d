package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// account list-tokens --expiring lists, against a real server, the tokens
// that expire within the time given, soonest first.
func TestListTokensExpiringRealServer(t *testing.T) {
	api := newRealAPI(t, false, "")
	admin := api.adminClient(t)
	mint := func(name string, life time.Duration) gatehouse.NewToken {
		t.Helper()
		secs := int64(life / time.Second)
		nt, err := admin.CreateToken(t.Context(), "admin", gatehouse.TokenRequest{Name: name, ExpiresIn: &secs})
		if err != nil {
			t.Fatal(err)
		}
		return nt
	}
	mint("in ten days", 10*24*time.Hour)
	six := mint("in six days", 6*24*time.Hour)
	two := mint("in two hours", 2*time.Hour)
	run, _ := api.loggedIn(t)
	// The CLI's clock is the server's here (the shared runs fix theirs).
	cliNow := func(args ...string) result {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), Env{
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(k string) string { return run.env[k] }, Now: time.Now,
		}, args)
		return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
	res := cliNow("account", "list-tokens", "--expiring", "7d", "-o", "json")
	mustSucceed(t, res)
	var got []gatehouse.Token
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, res.stdout)
	}
	if len(got) != 2 || got[0].ID != two.ID || got[1].ID != six.ID {
		t.Errorf("--expiring 7d listed %+v, want the two-hour token then the six-day one", got)
	}
	res = cliNow("account", "list-tokens", "--expiring", "1h", "-o", "json")
	mustSucceed(t, res)
	if strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("--expiring 1h: %s, want []", res.stdout)
	}
	res = cliNow("account", "list-tokens", "--expiring", "7d")
	mustSucceed(t, res)
	if !strings.Contains(res.stdout, "in six days") || strings.Contains(res.stdout, "in ten days") {
		t.Errorf("table:\n%s", res.stdout)
	}
	mustFail(t, cliNow("account", "list-tokens", "--expiring", "soon"), "--expiring")
	mustFail(t, cliNow("account", "list-tokens", "--expiring", "0"), "--expiring")
}
