package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// saveScreenshot writes a browser test's PNG screenshot as
// <dir>/<test name>/<name>.png, where dir is $GATEHOUSE_TEST_ARTIFACTS
// when set (so CI or a reviewer keeps them) and a temporary directory of
// the test otherwise. One folder per test keeps equal step names of
// different tests apart.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("GATEHOUSE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", `\`, "_", ":", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", file)
}
