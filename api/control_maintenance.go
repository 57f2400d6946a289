package api

import (
	"log/slog"
	"net/http"
)

// controlMaintenance adds "wherehouse check" and "wherehouse reindex" to
// the control socket.
//
//	POST /check    verify the store: storage.CheckReport
//	POST /reindex  rebuild its indexes: {"locations": n}
func controlMaintenance(mux *http.ServeMux, d ControlDeps) {
	m, log := d.Maintenance, d.Log
	if m == nil {
		return
	}
	mux.HandleFunc("POST /check", func(w http.ResponseWriter, r *http.Request) {
		report, err := m.Check(r.Context(), nil)
		if err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("store checked", "locations", report.Locations, "problems", len(report.Problems)+report.More)
		writeJSON(w, http.StatusOK, report)
	})
	mux.HandleFunc("POST /reindex", func(w http.ResponseWriter, r *http.Request) {
		done := 0
		err := m.Reindex(r.Context(), func(n int) { done = n })
		if err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("store reindexed", slog.Int("locations", done))
		writeJSON(w, http.StatusOK, map[string]int{"locations": done})
	})
}
