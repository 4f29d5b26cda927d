package pgtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Freeze stops the postmaster and every process under it with SIGSTOP, so
// the database hangs rather than refuses: its backends call setsid, so
// signalling the postmaster's process group would leave existing
// connections answering. Resume must follow (Stop does not).
func (s *Server) Freeze() error {
	for _, p := range tree(s.PID()) {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			return err
		}
	}
	return nil
}

// Resume undoes Freeze. It is safe to call on a server that is not frozen.
func (s *Server) Resume() {
	for _, p := range tree(s.PID()) {
		syscall.Kill(p, syscall.SIGCONT)
	}
}

// tree is pid and its descendants, from /proc.
func tree(pid int) []int {
	out := []int{pid}
	files, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				out = append(out, tree(n)...)
			}
		}
	}
	return out
}
