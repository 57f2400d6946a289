package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wherehouse/wherehouse/importer"
)

// ControlImportLine is one line of the control socket's answer to POST
// /import: progress lines while the body is read, then one with the
// summary (and the error, if the import stopped).
type ControlImportLine struct {
	Progress *importer.Progress `json:"progress,omitempty"`
	Summary  *importer.Summary  `json:"summary,omitempty"`
	Code     string             `json:"code,omitempty"` // "bad_input" or "internal" with Error
	Error    string             `json:"error,omitempty"`
}

// controlProgressEvery is how often the control socket reports progress.
const controlProgressEvery = 250 * time.Millisecond

// controlImport adds POST /import?format=&user=&device=&name=&mtime=&verbose=
// to the control socket: "wherehouse import" streams each file to the
// running server, which imports it into its store (so its last positions
// and device states change at once) and streams JSON lines back.
func controlImport(mux *http.ServeMux, d ControlDeps) {
	mux.HandleFunc("POST /import", func(w http.ResponseWriter, r *http.Request) {
		if d.Importer == nil {
			writeJSON(w, http.StatusNotFound, ControlError{"not_found", "this server does not import"})
			return
		}
		q := r.URL.Query()
		src := importer.Source{Name: q.Get("name"), Format: q.Get("format"), User: q.Get("user"), Device: q.Get("device")}
		if ms, err := strconv.ParseInt(q.Get("mtime"), 10, 64); err == nil && ms > 0 {
			src.ModTime = time.UnixMilli(ms)
		}
		opts := importer.RunOptions{}
		if q.Get("verbose") == "1" {
			opts.Examples = -1
		}
		// Progress lines go out while the body is still coming in.
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			d.Log.Debug("import without full duplex", "error", err)
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		var mu sync.Mutex
		var last time.Time
		opts.Progress = func(p importer.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) < controlProgressEvery {
				return
			}
			last = time.Now()
			enc.Encode(ControlImportLine{Progress: &p})
			rc.Flush()
		}
		sum, err := d.Importer.Import(r.Context(), r.Body, src, opts)
		mu.Lock()
		defer mu.Unlock()
		line := ControlImportLine{Summary: &sum}
		switch {
		case errors.Is(err, importer.ErrInput):
			line.Code, line.Error = "bad_input", err.Error()
		case err != nil:
			d.Log.Error("import failed", "name", src.Name, "error", err)
			line.Code, line.Error = "internal", err.Error()
		default:
			d.Log.Info("import done", "name", src.Name, "user", src.User, "device", src.Device,
				"new", sum.New, "existing", sum.Existing, "skipped", sum.Skipped)
		}
		enc.Encode(line)
	})
}
