package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTokenInspect(t *testing.T) {
	bare := testToken[strings.IndexByte(testToken, ':')+1:]
	tests := []struct {
		name   string
		args   []string
		stdin  string
		golden string
	}{
		{name: "argument", args: []string{testToken}, golden: "token_inspect"},
		{name: "stdin", args: []string{"-"}, stdin: testToken + "\n", golden: "token_inspect"},
		{name: "stdin with spaces", args: []string{"-"}, stdin: "  " + testToken + "  \r\n", golden: "token_inspect"},
		{name: "bare body", args: []string{bare}, golden: "token_inspect_bare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cliRun{stdin: tt.stdin}
			res := r.run(t, append([]string{"token", "inspect"}, tt.args...)...)
			mustSucceed(t, res)
			golden(t, tt.golden, res.stdout)
			if strings.Contains(res.stdout, bare) {
				t.Errorf("inspect printed the secret body")
			}
		})
	}

	res := cliRun{}.run(t, "token", "inspect", testToken, "-o", "json")
	mustSucceed(t, res)
	var info tokenInfo
	if err := json.Unmarshal([]byte(res.stdout), &info); err != nil {
		t.Fatal(err)
	}
	if want := (tokenInfo{Instance: "gatehouse", ID: tokenID1, Checksum: "ok"}); info != want {
		t.Errorf("-o json = %+v, want %+v", info, want)
	}
}

func TestTokenInspectRejectsEveryOneCharacterChange(t *testing.T) {
	body := strings.IndexByte(testToken, ':') + 1
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := body; i < len(testToken); i++ {
		// Replace with the next character of the alphabet: a typo that
		// keeps the shape, so only the checksum can catch it.
		c := alphabet[(strings.IndexByte(alphabet, testToken[i])+1)%len(alphabet)]
		changed := testToken[:i] + string(c) + testToken[i+1:]
		res := cliRun{}.run(t, "token", "inspect", changed)
		if res.code != 1 {
			t.Errorf("character %d changed: exit %d, want 1 (stdout %q)", i, res.code, res.stdout)
			continue
		}
		if !strings.HasPrefix(res.stderr, "error: invalid token: ") || strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("character %d changed: stderr %q, want one line \"error: invalid token: ...\"", i, res.stderr)
		}
		if strings.Contains(res.stderr, changed[body:]) || res.stdout != "" {
			t.Errorf("character %d changed: output echoes the token", i)
		}
	}
}

func TestTokenInspectMalformed(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"checksum", testToken[:len(testToken)-1] + "A", "error: invalid token: checksum mismatch\n"},
		{"truncated", testToken[:len(testToken)-3], "error: invalid token: malformed: body must be 71 characters\n"},
		{"bad instance", "Gate House:" + testToken[strings.IndexByte(testToken, ':')+1:], "error: invalid token: malformed: instance name must match [a-z0-9][a-z0-9-]{0,62}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cliRun{stdin: tt.in + "\n"}.run(t, "token", "inspect", "-")
			if res.code != 1 || res.stderr != tt.want {
				t.Errorf("exit %d, stderr %q; want 1, %q", res.code, res.stderr, tt.want)
			}
		})
	}
	res := cliRun{}.run(t, "token", "inspect", "-")
	mustFail(t, res, "no token on standard input")
}
