package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
)

// controlRetention adds the deletion and retention routes of the control
// socket: times are UNIX seconds, answers storage.Deleted.
//
//	GET    /retention                        every policy
//	PUT    /retention/{user}                 set one (storage.RetentionPolicy)
//	POST   /retention/run                    apply every policy now: []retention.Result
//	DELETE /locations?user=&device=&from=&to=
//	DELETE /devices/{user}/{device}
//	DELETE /users/{name}/data[?purge=1]      purge: the account's settings too
func controlRetention(mux *http.ServeMux, d ControlDeps) {
	m, log := d.Retention, d.Log
	if m == nil {
		return
	}
	mux.HandleFunc("GET /retention", func(w http.ResponseWriter, r *http.Request) {
		list, err := m.Policies(r.Context())
		if err != nil {
			retentionError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("PUT /retention/{user}", func(w http.ResponseWriter, r *http.Request) {
		var p storage.RetentionPolicy
		if !decodeBody(w, r, &p) {
			return
		}
		p.User = r.PathValue("user")
		p, err := m.SetPolicy(r.Context(), p)
		if err != nil {
			retentionError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("POST /retention/run", func(w http.ResponseWriter, r *http.Request) {
		results, err := m.ApplyAll(r.Context())
		if err != nil {
			retentionError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, results)
	})
	mux.HandleFunc("DELETE /locations", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, ferr := strconv.ParseInt(q.Get("from"), 10, 64)
		to, terr := strconv.ParseInt(q.Get("to"), 10, 64)
		if q.Get("user") == "" || q.Get("device") == "" || ferr != nil || terr != nil {
			writeJSON(w, http.StatusBadRequest, ControlError{"bad_request", "user, device, from and to (UNIX seconds) are required"})
			return
		}
		n, err := m.DeleteRange(r.Context(), q.Get("user"), q.Get("device"), from, to)
		if err != nil {
			retentionError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, n)
	})
	mux.HandleFunc("DELETE /devices/{user}/{device}", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.DeleteDevice(r.Context(), r.PathValue("user"), r.PathValue("device"))
		if err != nil {
			retentionError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, n)
	})
	mux.HandleFunc("DELETE /users/{name}/data", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.DeleteUserData(r.Context(), r.PathValue("name"), r.URL.Query().Get("purge") == "1")
		if err != nil {
			retentionError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, n)
	})
}

func retentionError(w http.ResponseWriter, log *slog.Logger, err error) {
	if errors.Is(err, retention.ErrInvalid) {
		writeJSON(w, http.StatusBadRequest, ControlError{"invalid", err.Error()})
		return
	}
	controlError(w, log, err)
}
