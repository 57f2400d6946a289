package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// ErrWebhookInvalid wraps a webhook the server refuses.
var ErrWebhookInvalid = fmt.Errorf("invalid webhook")

// NewWebhook checks and completes a webhook registration: an ID, and a
// random secret when it has none.
func NewWebhook(w storage.Webhook) (storage.Webhook, error) {
	w.Owner = strings.ToLower(strings.TrimSpace(w.Owner))
	if w.Owner == "" {
		return w, fmt.Errorf("%w: it needs an owner", ErrWebhookInvalid)
	}
	if err := CheckWebhookURL(w.URL); err != nil {
		return w, fmt.Errorf("%w: %w", ErrWebhookInvalid, err)
	}
	if w.Secret == "" {
		w.Secret = NewWebhookSecret()
	}
	id := make([]byte, 8)
	rand.Read(id)
	w.ID = hex.EncodeToString(id)
	w.Created = time.Now().UTC().Truncate(time.Second)
	return w, nil
}

// controlFences adds the fence and webhook routes of the control socket.
func controlFences(mux *http.ServeMux, d ControlDeps) {
	log := d.Log
	mux.HandleFunc("GET /fences", func(w http.ResponseWriter, r *http.Request) {
		list, err := d.Events.Fences(r.Context(), r.URL.Query().Get("owner"))
		if err != nil {
			controlError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("POST /fences", func(w http.ResponseWriter, r *http.Request) {
		var f storage.Fence
		if !decodeBody(w, r, &f) {
			return
		}
		f.ID = ""
		f, err := d.Events.PutFence(r.Context(), f)
		if err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("fence saved", "fence", f.ID, "owner", f.Owner, "name", f.Name)
		writeJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /fences/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Events.DeleteFence(r.Context(), r.PathValue("id")); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("fence deleted", "fence", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /webhooks", func(w http.ResponseWriter, r *http.Request) {
		list, err := d.Store.ListWebhooks(r.Context(), r.URL.Query().Get("owner"))
		if err != nil {
			controlError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("POST /webhooks", func(w http.ResponseWriter, r *http.Request) {
		var hook storage.Webhook
		if !decodeBody(w, r, &hook) {
			return
		}
		hook, err := NewWebhook(hook)
		if err == nil {
			err = d.Store.PutWebhook(r.Context(), hook)
		}
		if err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("webhook added", "webhook", hook.ID, "owner", hook.Owner)
		writeJSON(w, http.StatusCreated, hook)
	})
	mux.HandleFunc("DELETE /webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Store.DeleteWebhook(r.Context(), r.PathValue("id")); err != nil {
			controlError(w, log, err)
			return
		}
		log.Info("webhook deleted", "webhook", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
}
