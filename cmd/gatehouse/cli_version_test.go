package main

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

// TestCLIVersionAndCompletion runs the real binary against a real server:
// `version` prints the client's and the server's versions, and the shell
// completion of `account delete-token` offers the id of a token minted
// just before.
func TestCLIVersionAndCompletion(t *testing.T) {
	t.Parallel()
	_, u := loggedIn(t)

	out := ok(t, u.run(t, "version", "--short"))
	if out != "gatehouse: dev\ngatehouse-server: dev\n" {
		t.Errorf("version --short printed %q, want the client's and the server's", out)
	}
	out = ok(t, u.run(t, "version"))
	if !strings.Contains(out, "gatehouse-server: dev\n  Go Version:") {
		t.Errorf("version printed %q, want the server's Go version", out)
	}

	tok := strings.TrimSpace(ok(t, u.run(t, "account", "generate-token", "--name", "laptop")))
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	res := u.run(t, "__complete", "account", "delete-token", "")
	if res.code != 0 {
		t.Fatalf("__complete: exit %d, stderr %q", res.code, res.stderr)
	}
	if want := parsed.ID.String() + "\tlaptop\n:4\n"; res.stdout != want {
		t.Errorf("__complete account delete-token '' printed %q, want %q", res.stdout, want)
	}
}
