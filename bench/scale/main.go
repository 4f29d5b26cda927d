// Command scale measures Gatehouse with many live tokens: it inserts them
// straight into a SQLite store, starts the service on it as a restart
// would, and reports start-up time, resident memory and verification
// latency, against the same measures with 10,000 tokens.
//
//	go run ./bench/scale [-tokens 1000000] [-samples 200000] [-out bench/results/scale.json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/bench/internal/fixture"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// Row is one measured store size.
type Row struct {
	Tokens      int     `json:"tokens"`
	InsertSec   float64 `json:"insert_s"`
	StartSec    float64 `json:"start_s"`
	RSSMiB      float64 `json:"rss_mib"`
	HeapMiB     float64 `json:"heap_mib"`
	VerifyNs    float64 `json:"verify_mean_ns"`
	VerifyP50Ns float64 `json:"verify_p50_ns"`
	VerifyP99Ns float64 `json:"verify_p99_ns"`
}

func main() {
	n := flag.Int("tokens", 1_000_000, "live tokens in the large case")
	samples := flag.Int("samples", 200_000, "verifications timed per case")
	out := flag.String("out", "bench/results/scale.json", "JSON results file ('' for none)")
	flag.Parse()

	small, err := measure(10_000, *samples)
	if err != nil {
		log.Fatal(err)
	}
	large, err := measure(*n, *samples)
	if err != nil {
		log.Fatal(err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKENS\tINSERT\tSTART\tRSS\tHEAP\tVERIFY MEAN\tP50\tP99")
	for _, r := range []Row{small, large} {
		fmt.Fprintf(tw, "%d\t%.1fs\t%.2fs\t%.0f MiB\t%.0f MiB\t%.0f ns\t%.0f ns\t%.0f ns\n",
			r.Tokens, r.InsertSec, r.StartSec, r.RSSMiB, r.HeapMiB, r.VerifyNs, r.VerifyP50Ns, r.VerifyP99Ns)
	}
	tw.Flush()
	fmt.Printf("\nverify mean, %d vs 10,000 tokens: %.2f×\n", *n, large.VerifyNs/small.VerifyNs)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			log.Fatal(err)
		}
		b, _ := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "rows": []Row{small, large}}, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// measure fills a fresh store with n tokens, then times a service start on
// it (what a restart does: load accounts, policy and every token) and the
// full check (verify + authorize) over a sample of the tokens.
func measure(n, samples int) (Row, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "gatehouse-scale")
	if err != nil {
		return Row{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "scale.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return Row{}, err
	}
	if err := fixture.Accounts(ctx, st); err != nil {
		return Row{}, err
	}
	t0 := time.Now()
	toks, err := fixture.Tokens(ctx, st, "gatehouse", n, 4096)
	if err != nil {
		return Row{}, err
	}
	insert := time.Since(t0)
	st.Close()

	// The restart: a new store handle and a new service over the file.
	runtime.GC()
	debug.FreeOSMemory()
	t1 := time.Now()
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		return Row{}, err
	}
	defer st.Close()
	svc, err := service.New(ctx, service.Options{
		Store: st, AuditDisabled: true,
		RBAC: gatehouse.RBAC{PolicyCSV: fixture.Policy(1000)},
	})
	if err != nil {
		return Row{}, err
	}
	start := time.Since(t1)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := fixture.RSS()

	lat := make([]time.Duration, 0, samples)
	var p service.Principal
	begin := time.Now()
	for i := range samples {
		t := time.Now()
		if err := svc.AuthenticateInto(ctx, toks[i%len(toks)], &p); err != nil {
			return Row{}, err
		}
		if !svc.Can(&p, fixture.Resource, fixture.Action, fixture.Object) {
			return Row{}, fmt.Errorf("check refused")
		}
		lat = append(lat, time.Since(t))
	}
	mean := time.Since(begin) / time.Duration(samples)
	fixture.Sort(lat)
	runtime.KeepAlive(svc)
	return Row{
		Tokens: n, InsertSec: insert.Seconds(), StartSec: start.Seconds(),
		RSSMiB: float64(rss) / (1 << 20), HeapMiB: float64(ms.HeapInuse) / (1 << 20),
		VerifyNs:    float64(mean.Nanoseconds()),
		VerifyP50Ns: float64(fixture.Percentile(lat, 50).Nanoseconds()),
		VerifyP99Ns: float64(fixture.Percentile(lat, 99).Nanoseconds()),
	}, nil
}
