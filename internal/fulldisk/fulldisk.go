// Package fulldisk gives tests a small file system they can fill: a tmpfs
// mounted for one test. Tests use it to see what the store does when the
// disk is full.
package fulldisk

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of the given size (as mount's size= option: "2m")
// on a new directory and unmounts it when the test ends. It needs root:
// without it the test is skipped, unless GATEHOUSE_TEST_REQUIRE_ROOT=1 (CI)
// makes that a failure.
func Mount(t testing.TB, size string) string {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("GATEHOUSE_TEST_REQUIRE_ROOT") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("mounting a small tmpfs to fill needs root (GATEHOUSE_TEST_REQUIRE_ROOT=1 makes this a failure)")
	}
	dir, err := os.MkdirTemp("", "gatehouse-full")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		skip("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir
}

// Fill writes a file in dir until the file system is full and returns its
// path; removing it frees the space again.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}
