package service

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// Whatever a leak report holds, parseLeakReport accepts exactly the
// well-formed ones (every token parses, every hash is the canonical hex
// of 32 bytes, 1 to maxLeakBatch entries), hands back what they say, and
// refuses the rest with a message that holds nothing of the input.
func FuzzParseLeakReport(f *testing.F) {
	for _, r := range []gatehouse.LeakReport{{}, {Tokens: make([]string, maxLeakBatch+1)}, {Tokens: []string{"x"}}, {SHA256: []string{"x"}}} {
		_, _, err := parseLeakReport(r)
		if err == nil {
			f.Fatalf("parseLeakReport(%+v) accepted", r)
		}
		leakMessages += digitsAsZero(gatehouse.ErrorMessage(err)) + "\n"
	}
	tok, err := token.New("gatehouse", rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok.Reveal()))
	f.Add(tok.Reveal(), hex.EncodeToString(sum[:]), 1, 1)
	f.Add(tok.Body(), strings.ToUpper(hex.EncodeToString(sum[:])), 1, 1)
	f.Add(tok.Reveal()+"\n", "", 2, 0)
	f.Add("", "zz", 0, 1)
	f.Add("other:"+tok.Body(), hex.EncodeToString(sum[:31]), 1, 101)
	f.Fuzz(func(t *testing.T, tokText, hash string, nTokens, nHashes int) {
		nTokens, nHashes = min(max(nTokens, 0), 120), min(max(nHashes, 0), 120)
		var r gatehouse.LeakReport
		for range nTokens {
			r.Tokens = append(r.Tokens, tokText)
		}
		for range nHashes {
			r.SHA256 = append(r.SHA256, hash)
		}
		whole, hashes, err := parseLeakReport(r)
		_, perr := token.Parse(tokText)
		b, herr := hex.DecodeString(hash)
		n := nTokens + nHashes
		ok := n > 0 && n <= maxLeakBatch &&
			(nTokens == 0 || perr == nil) &&
			(nHashes == 0 || herr == nil && len(b) == 32 && hex.EncodeToString(b) == hash)
		if (err == nil) != ok {
			t.Fatalf("parseLeakReport(%d tokens, %d hashes) error = %v, want ok %v", nTokens, nHashes, err, ok)
		}
		if err != nil {
			msg := gatehouse.ErrorMessage(err)
			for _, in := range []string{tokText, hash} {
				// An input that is a piece of the messages' own text
				// ("atehouse" of "Gatehouse token") is no echo.
				if len(in) >= 8 && strings.Contains(msg, in) && !strings.Contains(leakMessages, digitsAsZero(in)) {
					t.Fatalf("the error %q repeats the input", msg)
				}
			}
			return
		}
		if len(whole) != nTokens || len(hashes) != nHashes {
			t.Fatalf("got %d tokens and %d hashes, want %d and %d", len(whole), len(hashes), nTokens, nHashes)
		}
		for _, w := range whole {
			if got := w.Reveal(); got != tokText {
				t.Fatalf("token %q handed back as %q", tokText, got)
			}
		}
		for _, h := range hashes {
			if hex.EncodeToString(h) != hash {
				t.Fatalf("hash %q handed back as %x", hash, h)
			}
		}
	})
}

// leakMessages is every message parseLeakReport refuses with, its digits
// as 0s (FuzzParseLeakReport fills it in).
var leakMessages string

func digitsAsZero(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '0'
		}
		return r
	}, s)
}
