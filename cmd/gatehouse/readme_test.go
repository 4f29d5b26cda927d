package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's walk-through is a script: the ```sh blocks that follow a
// "<!-- walkthrough -->" line, in order. TestREADMEWalkthrough runs exactly
// those blocks, as a reader would, against the real binary.

const walkthroughMark = "<!-- walkthrough -->"

// readmeBuild is the README's build command, which TestMain's build of
// this package stands for (the blocks run ./gatehouse).
const readmeBuild = "go build -o gatehouse ./cmd/gatehouse"

// shellBlock is one runnable block: its lines and the README line of the
// first.
type shellBlock struct {
	line  int
	lines []string
}

// walkthroughBlocks returns the README's walk-through blocks.
func walkthroughBlocks(t *testing.T, readme []byte) []shellBlock {
	t.Helper()
	var (
		out     []shellBlock
		lines   = strings.Split(string(readme), "\n")
		pending bool // the mark was the line before
	)
	for i := 0; i < len(lines); i++ {
		switch {
		case lines[i] == walkthroughMark:
			pending = true
			continue
		case pending && lines[i] == "```sh":
			b := shellBlock{line: i + 2}
			for i++; i < len(lines) && lines[i] != "```"; i++ {
				b.lines = append(b.lines, lines[i])
			}
			if i == len(lines) {
				t.Fatalf("README.md line %d: the walk-through block never ends", b.line-1)
			}
			out = append(out, b)
		case pending:
			t.Fatalf("README.md line %d: %q follows %s; want a ```sh block", i+1, lines[i], walkthroughMark)
		}
		pending = false
	}
	return out
}

// expectation is a "# → want" comment: the line printed the output want.
type expectation struct {
	line int
	want string
}

var (
	expectMark = regexp.MustCompile(`\s+# → (.*)$`)
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// walkthroughScript turns the blocks into one bash script. A command
// whose (last) line ends with "# → want" is run as
// { command; } | __expect LINE 'want', which prints its output, records
// that the check ran, and fails the script if the output differs.
func walkthroughScript(t *testing.T, blocks []shellBlock) (string, []expectation) {
	t.Helper()
	var (
		b       strings.Builder
		expects []expectation
	)
	b.WriteString(`__expect() {
  local got
  got=$(cat)
  printf '%s\n' "$got"
  printf '%s\n' "$1" >> "$README_CHECKED"
  if [ "$got" != "$2" ]; then
    printf '\nREADME.md line %s printed:\n%s\nThe README shows:\n%s\n' "$1" "$got" "$2" >&2
    return 1
  fi
}
`)
	for _, blk := range blocks {
		fmt.Fprintf(&b, "\n# README.md line %d\n", blk.line)
		first := 0 // index of the first line of the current command
		for i, l := range blk.lines {
			if strings.HasSuffix(l, "\\") {
				continue
			}
			m := expectMark.FindStringSubmatchIndex(l)
			if m == nil {
				b.WriteString(strings.Join(blk.lines[first:i+1], "\n") + "\n")
				first = i + 1
				continue
			}
			line := blk.line + i
			cmd := slices.Clone(blk.lines[first : i+1])
			if assignment.MatchString(strings.TrimSpace(cmd[0])) {
				t.Fatalf("README.md line %d: a # → line must show a command's output, not assign a variable", line)
			}
			want := l[m[2]:m[3]]
			cmd[len(cmd)-1] = l[:m[0]]
			fmt.Fprintf(&b, "{ %s; } | __expect %d %s\n", strings.Join(cmd, "\n"), line, shellQuote(want))
			expects = append(expects, expectation{line, want})
			first = i + 1
		}
	}
	return b.String(), expects
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// needTools skips the test when a tool the README's walk-through uses is
// missing, or fails it with GATEHOUSE_TEST_REQUIRE_CURL=1 (CI).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("GATEHOUSE_TEST_REQUIRE_CURL") == "1" {
				t.Fatalf("%s: %v (the README's walk-through needs it)", tool, err)
			}
			t.Skipf("%s: %v (GATEHOUSE_TEST_REQUIRE_CURL=1 makes this a failure)", tool, err)
		}
	}
}

// TestREADMEWalkthrough runs the README's walk-through top to bottom with
// bash -euo pipefail in an empty directory, against the real binary on a
// free loopback port and a fresh data directory (given through
// GATEHOUSE_LISTEN and GATEHOUSE_DATA_DIR, which the walk-through reads).
// Every "# →" line must print what the README shows; no request may fail
// but the ones the README shows failing; and after the last block, which
// stops the server, the server's process must be gone and its port
// closed.
func TestREADMEWalkthrough(t *testing.T) {
	needTools(t, "bash", "curl", "jq")
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("\n"+readmeBuild+"\n")) {
		t.Fatalf("README.md does not build the binary with %q, which this test's build stands for", readmeBuild)
	}
	blocks := walkthroughBlocks(t, readme)
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d walk-through blocks, want the walk-through", len(blocks))
	}
	script, expects := walkthroughScript(t, blocks)

	dir := t.TempDir()
	home, data := filepath.Join(dir, "home"), filepath.Join(dir, "data")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(dir, "gatehouse")); err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(t.TempDir(), "walkthrough.sh")
	checked := filepath.Join(t.TempDir(), "checked")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", scriptPath)
	cmd.Dir = dir
	// A reader's environment, not the developer's: no GATEHOUSE_*
	// setting, config or token leaks in; the CLI's config goes to HOME.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8",
		"GATEHOUSE_LISTEN=" + addr, "GATEHOUSE_DATA_DIR=" + data, "README_CHECKED=" + checked}
	// Its own process group, so that a server the script leaves behind
	// when it fails midway is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A server left running keeps the script's output open: do not wait
	// for it once bash has exited.
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	// Whatever the script leaves behind when it fails; nothing is left
	// when it stops the server.
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	runErr := cmd.Wait()
	logs, _ := os.ReadFile(filepath.Join(dir, "gatehouse.log"))
	switch {
	case errors.Is(runErr, exec.ErrWaitDelay):
		t.Errorf("the walk-through ended, but something it started still holds its output: the stop command did not stop the server\nstdout:\n%s", stdout.String())
	case runErr != nil:
		t.Fatalf("the walk-through failed (%v)\nstdout:\n%s\nstderr:\n%s\ngatehouse.log:\n%s", runErr, stdout.String(), stderr.String(), logs)
	}

	// Every check ran.
	ran, _ := os.ReadFile(checked)
	if got, want := strings.Count(string(ran), "\n"), len(expects); got != want || want == 0 {
		t.Errorf("%d of the README's %d # → lines were checked", got, want)
	}

	// The stop command stopped it: the process is gone, the port closed.
	pidText, err := os.ReadFile(filepath.Join(data, lockFile))
	if err != nil {
		t.Fatalf("the server's lock file in GATEHOUSE_DATA_DIR: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("lock file holds %q", pidText)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the server (PID %d) is still there after the stop command (kill -0: %v)", pid, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the stop command", addr)
	}
	if !bytes.Contains(logs, []byte(`"msg":"shutting down"`)) {
		t.Errorf("the server did not shut down gracefully; gatehouse.log:\n%s", logs)
	}

	// No request failed silently: the failures the access log records are
	// exactly the ones the README shows.
	var wantFailed, failed []int
	for _, e := range expects {
		if n, err := strconv.Atoi(e.want); err == nil && n >= 400 && n <= 599 {
			wantFailed = append(wantFailed, n)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(logs))
	for sc.Scan() {
		var l struct {
			Msg    string
			Method string
			Path   string
			Status int
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "request" && l.Status >= 400 {
			failed = append(failed, l.Status)
			t.Logf("failed request: %s %s: %d", l.Method, l.Path, l.Status)
		}
	}
	slices.Sort(wantFailed)
	slices.Sort(failed)
	if !slices.Equal(failed, wantFailed) {
		t.Errorf("requests answered with %v, want exactly the failures the README shows, %v\ngatehouse.log:\n%s", failed, wantFailed, logs)
	}
}

// The script is built as documented: each "# →" line becomes a check,
// continuation lines stay one command, and other lines pass unchanged.
func TestWalkthroughScript(t *testing.T) {
	readme := []byte("text\n" + walkthroughMark + "\n```sh\nA=1\necho \"$A\" \\\n  two   # → 1 two\necho \"it's\"   # → it's\n```\n```sh\nnot run\n```\n")
	blocks := walkthroughBlocks(t, readme)
	if len(blocks) != 1 || blocks[0].line != 4 {
		t.Fatalf("blocks = %+v, want one from line 4", blocks)
	}
	script, expects := walkthroughScript(t, blocks)
	wantExpects := []expectation{{6, "1 two"}, {7, "it's"}}
	if !slices.Equal(expects, wantExpects) {
		t.Errorf("expectations = %+v, want %+v", expects, wantExpects)
	}
	for _, want := range []string{
		"\nA=1\n",
		"{ echo \"$A\" \\\n  two; } | __expect 6 '1 two'\n",
		"{ echo \"it's\"; } | __expect 7 'it'\\''s'\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "not run") {
		t.Errorf("an unmarked block is in the script:\n%s", script)
	}
}
