package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ExportErrorTrailer is the HTTP trailer in which the control socket
// reports an export that failed after its body had begun.
const ExportErrorTrailer = "X-Wherehouse-Error"

// ParseTime reads a from/to value as /api/0/locations does: UTC
// YYYY-MM-DDTHH:MM:SS (with or without Z or an offset), YYYY-MM-DD (the
// whole day: its start, or with end its last second) or UNIX seconds.
func ParseTime(v string, end bool) (time.Time, error) { return parseTime(v, end) }

// controlExport adds GET /export?user=&device=&from=&to=&format=&fields=&gap=
// to the control socket (from and to in UNIX seconds): the body is the
// export, streamed as it is read. A failure before the body is a JSON
// ControlError; one after it has begun is reported in the
// ExportErrorTrailer trailer, so the CLI never takes a cut-off export for
// a whole one.
func controlExport(mux *http.ServeMux, d ControlDeps) {
	mux.HandleFunc("GET /export", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := ExportOptions{User: q.Get("user"), Device: q.Get("device"), Format: q.Get("format"), Fields: q.Get("fields")}
		var err error
		for _, v := range []struct {
			name string
			dst  *int64
		}{{"from", &opts.From}, {"to", &opts.To}, {"gap", &opts.Gap}} {
			if s := q.Get(v.name); s != "" && err == nil {
				if *v.dst, err = strconv.ParseInt(s, 10, 64); err != nil {
					err = errors.New(v.name + " must be a whole number")
				}
			}
		}
		if q.Get("to") == "" {
			opts.To = math.MaxInt64
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, ControlError{"invalid", err.Error()})
			return
		}
		w.Header().Set("Content-Type", exportMIME(opts.Format))
		w.Header().Set("Trailer", ExportErrorTrailer)
		sw := &startedWriter{w: w}
		err = Export(r.Context(), d.History, d.Version, opts, sw)
		switch {
		case err == nil:
		case !sw.started && errors.Is(err, ErrExportInvalid):
			w.Header().Del("Trailer")
			writeJSON(w, http.StatusBadRequest, ControlError{"invalid", strings.TrimPrefix(err.Error(), ErrExportInvalid.Error()+": ")})
		case !sw.started:
			w.Header().Del("Trailer")
			controlError(w, d.Log, err)
		default:
			if !errors.Is(err, context.Canceled) {
				d.Log.Error("export failed", "user", opts.User, "device", opts.Device, "error", err)
			}
			w.Header().Set(ExportErrorTrailer, err.Error())
		}
	})
}

// exportMIME is the media type of an export format.
func exportMIME(format string) string {
	switch format = strings.ToLower(format); format {
	case "":
		format = formatJSON
	case formatRec:
		return mimeRec
	}
	if f, ok := trackFormats[format]; ok {
		return f.mime
	}
	return "application/octet-stream"
}

// startedWriter notes whether anything was written.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}
