package server

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// accessLog writes the access log, one line per request. With a writer
// (Options.LogWriter, the writer under the logger's JSON handler) it
// encodes the line itself, byte for byte what slog.NewJSONHandler with
// default options writes for the same record (a test holds it to that for
// every string; the time is the middleware's reading of the clock, never
// zero and within years 0-9999, where slog would write otherwise): slog's
// generic record and attribute machinery was a third of what the server's
// own code spent on a health check. Being the logger's format, not the
// logger, the direct path knows nothing of attributes added with
// Logger.With, of ReplaceAttr or of a wrapping handler; Options.LogWriter
// is for a logger that has none. Without a writer, the line goes through
// the logger's handler (a record without a source location).
type accessLog struct {
	log *slog.Logger
	w   io.Writer
	buf sync.Pool // *[]byte
}

// accessLine is one request's line.
type accessLine struct {
	time     time.Time
	level    slog.Level
	id       string
	method   string
	path     string
	route    string
	status   int
	duration time.Duration
	remote   string
}

func newAccessLog(log *slog.Logger, w io.Writer) *accessLog {
	a := &accessLog{log: log, w: w}
	a.buf.New = func() any { b := make([]byte, 0, 512); return &b }
	return a
}

func (a *accessLog) write(ctx context.Context, l *accessLine) {
	if !a.log.Enabled(ctx, l.level) {
		return
	}
	if a.w == nil {
		rec := slog.NewRecord(l.time, l.level, "request", 0)
		rec.AddAttrs(
			slog.String("request_id", l.id),
			slog.String("method", l.method),
			slog.String("path", l.path),
			slog.String("route", l.route),
			slog.Int("status", l.status),
			slog.Duration("duration", l.duration),
			slog.String("remote", l.remote),
		)
		_ = a.log.Handler().Handle(ctx, rec)
		return
	}
	bp := a.buf.Get().(*[]byte)
	b := l.appendJSON((*bp)[:0])
	// The log's writer takes whole lines (logbuf copies them); a failed
	// write has no one to be reported to, as with slog's.
	_, _ = a.w.Write(b)
	if cap(b) <= 4<<10 {
		*bp = b
		a.buf.Put(bp)
	}
}

// appendJSON appends l as slog's JSONHandler writes a record with
// message "request" and these attributes.
func (l *accessLine) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = l.time.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = appendLogString(b, l.level.String())
	b = append(b, `,"msg":"request","request_id":`...)
	b = appendLogString(b, l.id)
	b = append(b, `,"method":`...)
	b = appendLogString(b, l.method)
	b = append(b, `,"path":`...)
	b = appendLogString(b, l.path)
	b = append(b, `,"route":`...)
	b = appendLogString(b, l.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(l.duration), 10)
	b = append(b, `,"remote":`...)
	b = appendLogString(b, l.remote)
	return append(b, "}\n"...)
}
