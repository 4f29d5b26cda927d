package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// A SIGTERM while many requests are in flight loses neither an access log
// line nor an audit event: the log's background writer and the audit
// queue are both flushed on the way out. Every answered request is in both,
// and each request the server handled is in both the same number of times.
func TestSIGTERMWithRequestsInFlightLosesNoLogLineAndNoAuditEvent(t *testing.T) {
	s := startWith(t, t.TempDir(), nil, "GATEHOUSE_ADMIN_PASSWORD="+lossPassword)
	tok := login(t, s.url, "admin", lossPassword)

	const clients = 32
	var answered atomic.Int64
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			for n := 0; n < 100_000; n++ {
				req, _ := http.NewRequest("GET", s.url+"/api/v1/session/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := c.Do(req)
				if err != nil {
					return // the server has stopped listening
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					answered.Add(1)
					once.Do(func() { close(started) })
				}
			}
		}()
	}
	<-started
	time.Sleep(300 * time.Millisecond) // requests in flight, events queued
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	wg.Wait()

	lines := 0
	sc := bufio.NewScanner(bytes.NewReader([]byte(s.logs.String())))
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"msg":"request"`)) && bytes.Contains(sc.Bytes(), []byte(`"path":"/api/v1/session/userinfo"`)) {
			lines++
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dataDir, dbFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var events int
	if err := db.QueryRow(`SELECT COALESCE(SUM(count), 0) FROM events WHERE type = 'request' AND route = 'GET /api/v1/session/userinfo'`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	n := int(answered.Load())
	t.Logf("%d requests answered; %d access log lines, %d audited requests (counts of alike reads added up)", n, lines, events)
	if lines < n || events < n {
		t.Errorf("%d requests answered, but %d access log lines and %d audited requests (counts of alike reads added up): some were lost", n, lines, events)
	}
	if lines != events {
		t.Errorf("%d access log lines but %d audited requests (counts of alike reads added up) for the same requests", lines, events)
	}
}
