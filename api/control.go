package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
)

// ControlUser is a user as the control socket lists it (never the hash).
type ControlUser struct {
	Name    string    `json:"name"`
	Admin   bool      `json:"admin"`
	Created time.Time `json:"created"`
}

// ControlRequest is the body of user changes on the control socket.
type ControlRequest struct {
	Name     string `json:"name,omitempty"`
	Password string `json:"password,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
	Secret   string `json:"secret,omitempty"`
}

// ControlError is how the control socket reports a failure.
type ControlError struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

// ControlDeps are what the control socket changes.
type ControlDeps struct {
	Accounts *auth.Accounts
	Secrets  *auth.Secrets
	Policy   *auth.Policy
	Events   *events.Engine
	Store    storage.Webhooks
	History  storage.Messages // what export reads
	Version  string           // named in exports
	Log      *slog.Logger

	// Retention deletes history and keeps retention policies; nil leaves
	// those routes out.
	Retention *retention.Manager

	// Importer imports history files sent by "wherehouse import".
	Importer *importer.Importer

	// Maintenance checks and reindexes the store; nil leaves those routes
	// out.
	Maintenance storage.Maintenance
}

// Control returns the handler for the control socket: the CLI's way to
// change a store that a running server holds open. The socket file is
// mode 0600, so only the store's owner reaches it; no login is asked.
func Control(d ControlDeps) http.Handler {
	accounts, secrets, policy, log := d.Accounts, d.Secrets, d.Policy, d.Log
	mux := http.NewServeMux()
	controlFences(mux, d)
	controlRetention(mux, d)
	controlExport(mux, d)
	controlImport(mux, d)
	controlMaintenance(mux, d)
	mux.HandleFunc("GET /shares", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, policy.Shares(r.URL.Query().Get("user")))
	})
	mux.HandleFunc("POST /shares", func(w http.ResponseWriter, r *http.Request) {
		var sh storage.Share
		if !decodeBody(w, r, &sh) {
			return
		}
		sh, err := policy.AddShare(r.Context(), sh)
		if err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("share added", "id", sh.ID, "owner", sh.Owner, "viewer", sh.Viewer, "device", sh.Device, "precision", sh.Precision)
		writeJSON(w, http.StatusCreated, sh)
	})
	mux.HandleFunc("DELETE /shares/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := policy.Revoke(r.Context(), r.PathValue("id")); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("share revoked", "id", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /groups", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, policy.Groups())
	})
	mux.HandleFunc("PUT /groups/{name}", func(w http.ResponseWriter, r *http.Request) {
		var g storage.Group
		if !decodeBody(w, r, &g) {
			return
		}
		g.Name = r.PathValue("name")
		if err := policy.SetGroup(r.Context(), g); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("group set", "group", g.Name, "members", len(g.Members))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /groups/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := policy.DeleteGroup(r.Context(), r.PathValue("name")); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("group deleted", "group", r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /keys/{user}/{device}", func(w http.ResponseWriter, r *http.Request) {
		var req ControlRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if err := secrets.Set(r.Context(), r.PathValue("user"), r.PathValue("device"), req.Secret); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("encryption secret set", "user", r.PathValue("user"), "device", r.PathValue("device"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /keys/{user}/{device}", func(w http.ResponseWriter, r *http.Request) {
		if err := secrets.Delete(r.Context(), r.PathValue("user"), r.PathValue("device")); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("encryption secret deleted", "user", r.PathValue("user"), "device", r.PathValue("device"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		users, err := accounts.List(r.Context())
		if err != nil {
			controlError(w, log, err)
			return
		}
		out := make([]ControlUser, 0, len(users))
		for _, u := range users {
			out = append(out, ControlUser{Name: u.Name, Admin: u.Admin, Created: u.Created})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var req ControlRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if err := accounts.Add(r.Context(), req.Name, req.Password, req.Admin); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("user added", "user", req.Name, "admin", req.Admin)
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("PUT /users/{name}/password", func(w http.ResponseWriter, r *http.Request) {
		var req ControlRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if err := accounts.SetPassword(r.Context(), r.PathValue("name"), req.Password); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("password changed", "user", r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := accounts.Delete(r.Context(), r.PathValue("name")); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("user deleted", "user", r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func controlError(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ControlError{"not_found", err.Error()})
	case errors.Is(err, storage.ErrExists):
		writeJSON(w, http.StatusConflict, ControlError{"exists", err.Error()})
	case errors.Is(err, auth.ErrInvalidName), errors.Is(err, auth.ErrWeakPassword), errors.Is(err, auth.ErrShareInvalid),
		errors.Is(err, events.ErrInvalid), errors.Is(err, ErrWebhookInvalid):
		writeJSON(w, http.StatusBadRequest, ControlError{"invalid", err.Error()})
	default:
		log.Error("control request failed", "error", err)
		writeJSON(w, http.StatusInternalServerError, ControlError{"internal", err.Error()})
	}
}

// decodeBody reads a JSON body into v, answering 400 when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, ControlError{"bad_request", err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
