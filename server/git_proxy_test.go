package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// gitRepos is a real git smart-HTTP server: `git http-backend` run as a
// CGI program, serving the bare repositories under root at
// /repos/<project>/<name>.git. It records the X-User header (set by the
// README's nginx configuration from X-Auth-User) of every request that
// reaches it.
type gitRepos struct {
	root string
	url  string
	mu   sync.Mutex
	seen []string
}

func (g *gitRepos) reached() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.seen)
}

func (g *gitRepos) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = nil
}

func newGitRepos(t *testing.T, git string) *gitRepos {
	t.Helper()
	g := &gitRepos{root: t.TempDir()}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Root: "/repos",
		Env:  []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + g.root},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.seen = append(g.seen, r.Header.Get("X-User"))
		g.mu.Unlock()
		backend.ServeHTTP(w, r)
	})}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g.url = "http://" + ln.Addr().String()
	return g
}

// gitRun runs git with a clean environment: no system or global config,
// no credential helper, no prompt, no proxy from the developer's shell.
func gitRun(t *testing.T, git, home string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustGit is gitRun that fails the test when git fails.
func mustGit(t *testing.T, git, home string, args ...string) string {
	t.Helper()
	out, err := gitRun(t, git, home, args...)
	if err != nil {
		shown := slices.Clone(args)
		for i, a := range shown {
			if u, perr := url.Parse(a); perr == nil && u.User != nil {
				shown[i] = u.Redacted()
			}
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(shown, " "), err, out)
	}
	return out
}

// addRepo creates the bare repository <project>/repo.git with one commit
// holding README and returns that commit's id.
func (g *gitRepos) addRepo(t *testing.T, git, project string) string {
	t.Helper()
	home := t.TempDir()
	work := filepath.Join(home, "work")
	mustGit(t, git, home, "init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("repo of "+project+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, git, home, "-C", work, "add", "README")
	mustGit(t, git, home, "-C", work, "commit", "-q", "-m", "first")
	mustGit(t, git, home, "clone", "-q", "--bare", work, filepath.Join(g.root, project, "repo.git"))
	return strings.TrimSpace(mustGit(t, git, home, "-C", work, "rev-parse", "HEAD"))
}

// TestGitThroughNginx runs real git against a real git smart-HTTP server
// behind the README's nginx configuration, with the Gatehouse token as
// the password (in the URL, and from a credential helper reading a token
// file), and real curl -u. git sends credentials only after a 401 whose
// challenge it understands, and nginx auth_request passes only the first
// challenge of the auth response: so Gatehouse's must be Basic.
func TestGitThroughNginx(t *testing.T) {
	nginx := needBinary(t, "nginx", "GATEHOUSE_TEST_REQUIRE_NGINX", "/usr/sbin/nginx")
	git := needBinary(t, "git", "GATEHOUSE_TEST_REQUIRE_NGINX", "/usr/bin/git")
	curl := needBinary(t, "curl", "GATEHOUSE_TEST_REQUIRE_NGINX", "/usr/bin/curl")
	e, olga := fwdEnv(t) // olga may get projects team-a, not team-b
	e.createUser("bob")  // no group: no project
	bob := e.mint(e.login("bob", "bob-password"), "bob", gatehouse.TokenRequest{Name: "git"})

	repos := newGitRepos(t, git)
	head := repos.addRepo(t, git, "team-a")
	repos.addRepo(t, git, "team-b")
	base := startNginx(t, nginx, repos.url, e.srv.URL)
	hostport := strings.TrimPrefix(base, "http://")
	repoURL := func(project string, user *url.Userinfo) string {
		u := url.URL{Scheme: "http", Host: hostport, Path: "/repos/" + project + "/repo.git", User: user}
		return u.String()
	}
	home := t.TempDir()

	// Without credentials: nginx answers Gatehouse's 401 with the Basic
	// challenge first, and nothing reaches the repositories.
	resp, err := http.Get(repoURL("team-a", nil) + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || len(got) == 0 || !strings.HasPrefix(got[0], "Basic ") {
		t.Errorf("no credentials through nginx: %d, WWW-Authenticate %q; want 401 with Basic first", resp.StatusCode, got)
	}

	t.Run("ok/token as password in the URL", func(t *testing.T) {
		repos.reset()
		out := mustGit(t, git, home, "ls-remote", repoURL("team-a", url.UserPassword("x", olga.Token)))
		if want := head + "\trefs/heads/main"; !strings.Contains(out, want) {
			t.Fatalf("git ls-remote printed %q, want a line %q", out, want)
		}
		// The README's form: the token unescaped after "x:".
		raw := "http://x:" + olga.Token + "@" + hostport + "/repos/team-a/repo.git"
		if out := mustGit(t, git, home, "ls-remote", raw); !strings.Contains(out, head) {
			t.Fatalf("git ls-remote with the raw token printed %q, want %s", out, head)
		}
		// A clone also POSTs git-upload-pack through forward auth.
		dst := filepath.Join(t.TempDir(), "clone")
		mustGit(t, git, home, "clone", "-q", repoURL("team-a", url.UserPassword("x", olga.Token)), dst)
		if b, err := os.ReadFile(filepath.Join(dst, "README")); err != nil || string(b) != "repo of team-a\n" {
			t.Fatalf("cloned README = %q, %v", b, err)
		}
		if got := repos.reached(); len(got) == 0 || slices.ContainsFunc(got, func(u string) bool { return u != "olga" }) {
			t.Fatalf("requests reached the repositories as %q, want only olga", got)
		}
	})

	t.Run("ok/credential helper reading a token file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(olga.Token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		helper := fmt.Sprintf(`!f() { test "$1" = get && echo username=x && echo "password=$(cat '%s')"; }; f`, file)
		out := mustGit(t, git, home, "-c", "credential.helper="+helper, "ls-remote", repoURL("team-a", nil))
		if !strings.Contains(out, head) {
			t.Fatalf("git ls-remote with a credential helper printed %q, want %s", out, head)
		}
	})

	t.Run("ok/curl -u", func(t *testing.T) {
		for _, user := range []string{olga.Token, "x:" + olga.Token} {
			code := curlStatus(t, curl, "-u", user, repoURL("team-a", nil)+"/info/refs?service=git-upload-pack")
			if code != "200" {
				t.Errorf("curl -u %s: %s, want 200", strings.SplitN(user, ":", 2)[0]+":…", code)
			}
		}
		if code := curlStatus(t, curl, repoURL("team-a", nil)+"/info/refs?service=git-upload-pack"); code != "401" {
			t.Errorf("curl without -u: %s, want 401", code)
		}
	})

	fails := map[string]struct {
		url        string
		wantStatus int
		wantOutput string
	}{
		"fail/no token":       {repoURL("team-a", nil), 401, "terminal prompts disabled"},
		"fail/wrong token":    {repoURL("team-a", url.UserPassword("x", flip(olga.Token))), 401, "Authentication failed"},
		"fail/other project":  {repoURL("team-b", url.UserPassword("x", olga.Token)), 403, "403"},
		"fail/no permission":  {repoURL("team-a", url.UserPassword("x", bob.Token)), 403, "403"},
		"fail/user, no token": {repoURL("team-a", url.User("x")), 401, "terminal prompts disabled"},
	}
	for name, c := range fails {
		t.Run(name, func(t *testing.T) {
			repos.reset()
			out, err := gitRun(t, git, home, "ls-remote", c.url)
			if err == nil {
				t.Fatalf("git ls-remote succeeded:\n%s", out)
			}
			if !strings.Contains(out, c.wantOutput) {
				t.Errorf("git said %q, want it to mention %q", out, c.wantOutput)
			}
			if got := repos.reached(); len(got) != 0 {
				t.Errorf("%d requests reached the repositories: %q", len(got), got)
			}
			// The same request over plain HTTP, credentials and all, gets
			// the status git was refused with.
			u, _ := url.Parse(c.url + "/info/refs?service=git-upload-pack")
			creds := u.User
			u.User = nil
			req, _ := http.NewRequest("GET", u.String(), nil)
			if p, ok := creds.Password(); ok {
				req.SetBasicAuth(creds.Username(), p)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.wantStatus {
				t.Errorf("the same request over HTTP: %d, want %d", resp.StatusCode, c.wantStatus)
			}
		})
	}
}

// curlStatus runs curl with args, without a proxy from the environment,
// and returns the HTTP status it got.
func curlStatus(t *testing.T, curl string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	return string(out)
}
