package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wherehouse/wherehouse/api"
	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// userAdmin is what the user commands need, whether the store is open in
// this process or held by a running server.
type userAdmin interface {
	Add(ctx context.Context, name, password string, admin bool) error
	SetPassword(ctx context.Context, name, password string) error
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]api.ControlUser, error)
	SetKey(ctx context.Context, user, device, secret string) error
	DeleteKey(ctx context.Context, user, device string) error
	AddShare(ctx context.Context, s storage.Share) (storage.Share, error)
	Shares(ctx context.Context, user string) ([]storage.Share, error)
	Revoke(ctx context.Context, id string) error
	SetGroup(ctx context.Context, g storage.Group) error
	DeleteGroup(ctx context.Context, name string) error
	Groups(ctx context.Context) ([]storage.Group, error)
	AddFence(ctx context.Context, f storage.Fence) (storage.Fence, error)
	Fences(ctx context.Context, owner string) ([]storage.Fence, error)
	DeleteFence(ctx context.Context, id string) error
	AddWebhook(ctx context.Context, w storage.Webhook) (storage.Webhook, error)
	Webhooks(ctx context.Context, owner string) ([]storage.Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	// Deleting history and retention policies (retention.go).
	DeleteRange(ctx context.Context, user, device string, from, to int64) (storage.Deleted, error)
	DeleteDevice(ctx context.Context, user, device string) (storage.Deleted, error)
	DeleteUserData(ctx context.Context, user string, purge bool) (storage.Deleted, error)
	RetentionPolicies(ctx context.Context) ([]storage.RetentionPolicy, error)
	SetRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionPolicy, error)
	ApplyRetention(ctx context.Context) ([]retention.Result, error)
	// Export writes a device's history to w as api.Export does.
	Export(ctx context.Context, opts api.ExportOptions, w io.Writer) error
	// Check verifies the store; Reindex rebuilds its indexes and returns
	// how many locations it indexed (check.go).
	Check(ctx context.Context, progress func(int)) (storage.CheckReport, error)
	Reindex(ctx context.Context, progress func(int)) (int, error)
}

// openAdmin talks to the running server over its control socket, or, when
// none runs, opens the store directly. close must be called when done.
func openAdmin(ctx context.Context, dataDir string) (userAdmin, func() error, error) {
	sock := filepath.Join(dataDir, socketFile)
	if controlRunning(sock) {
		return newControlClient(sock), func() error { return nil }, nil
	}
	store, err := embedded.Open(ctx, dataDir, slog.New(slog.DiscardHandler))
	if errors.Is(err, storage.ErrLocked) {
		return nil, nil, fmt.Errorf("%w, but its control socket %s does not answer; is it still starting? try again", err, sock)
	}
	if err != nil {
		return nil, nil, err
	}
	secrets, err := openSecrets(dataDir, store)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	policy, err := auth.NewPolicy(ctx, store)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	keeper := newRetention(store, slog.New(slog.DiscardHandler), nil, nil, purgeUser(policy, storeFences{store}, store, secrets, store))
	return directAdmin{auth.NewAccounts(store), secrets, policy, store, keeper}, store.Close, nil
}

// controlRunning reports whether a server answers on the control socket.
func controlRunning(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

type directAdmin struct {
	*auth.Accounts
	secrets   *auth.Secrets
	policy    *auth.Policy
	store     *embedded.Store
	retention *retention.Manager
}

// AddFence checks and stores a fence; the server applies it when it starts.
func (d directAdmin) AddFence(ctx context.Context, f storage.Fence) (storage.Fence, error) {
	f.ID = ""
	f, _, err := events.Validate(f)
	if err != nil {
		return f, err
	}
	return f, d.store.PutFence(ctx, f)
}

func (d directAdmin) Fences(ctx context.Context, owner string) ([]storage.Fence, error) {
	return d.store.ListFences(ctx, owner)
}

func (d directAdmin) DeleteFence(ctx context.Context, id string) error {
	return d.store.DeleteFence(ctx, id)
}

func (d directAdmin) AddWebhook(ctx context.Context, w storage.Webhook) (storage.Webhook, error) {
	w, err := api.NewWebhook(w)
	if err != nil {
		return w, err
	}
	return w, d.store.PutWebhook(ctx, w)
}

func (d directAdmin) Webhooks(ctx context.Context, owner string) ([]storage.Webhook, error) {
	return d.store.ListWebhooks(ctx, owner)
}

func (d directAdmin) DeleteWebhook(ctx context.Context, id string) error {
	return d.store.DeleteWebhook(ctx, id)
}

func (d directAdmin) Export(ctx context.Context, opts api.ExportOptions, w io.Writer) error {
	return api.Export(ctx, d.store, version, opts, w)
}

func (d directAdmin) AddShare(ctx context.Context, s storage.Share) (storage.Share, error) {
	return d.policy.AddShare(ctx, s)
}

func (d directAdmin) Shares(_ context.Context, user string) ([]storage.Share, error) {
	return d.policy.Shares(user), nil
}

func (d directAdmin) Revoke(ctx context.Context, id string) error { return d.policy.Revoke(ctx, id) }

func (d directAdmin) SetGroup(ctx context.Context, g storage.Group) error {
	return d.policy.SetGroup(ctx, g)
}

func (d directAdmin) DeleteGroup(ctx context.Context, name string) error {
	return d.policy.DeleteGroup(ctx, name)
}

func (d directAdmin) Groups(context.Context) ([]storage.Group, error) { return d.policy.Groups(), nil }

func (d directAdmin) SetKey(ctx context.Context, user, device, secret string) error {
	return d.secrets.Set(ctx, user, device, secret)
}

func (d directAdmin) DeleteKey(ctx context.Context, user, device string) error {
	return d.secrets.Delete(ctx, user, device)
}

func (d directAdmin) List(ctx context.Context) ([]api.ControlUser, error) {
	users, err := d.Accounts.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.ControlUser, 0, len(users))
	for _, u := range users {
		out = append(out, api.ControlUser{Name: u.Name, Admin: u.Admin, Created: u.Created})
	}
	return out, nil
}

// controlClient speaks HTTP over the control socket.
type controlClient struct{ hc *http.Client }

func newControlClient(sock string) *controlClient {
	return &controlClient{hc: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}

func (c *controlClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://wherehouse"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("talk to the running server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var ce api.ControlError
		json.NewDecoder(resp.Body).Decode(&ce)
		switch ce.Code {
		case "not_found":
			return fmt.Errorf("%s: %w", ce.Message, storage.ErrNotFound)
		case "exists":
			return fmt.Errorf("%s: %w", ce.Message, storage.ErrExists)
		}
		return fmt.Errorf("server: %s", ce.Message)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (c *controlClient) Add(ctx context.Context, name, password string, admin bool) error {
	return c.do(ctx, http.MethodPost, "/users", api.ControlRequest{Name: name, Password: password, Admin: admin}, nil)
}

func (c *controlClient) SetPassword(ctx context.Context, name, password string) error {
	return c.do(ctx, http.MethodPut, "/users/"+url.PathEscape(name)+"/password", api.ControlRequest{Password: password}, nil)
}

func (c *controlClient) Delete(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/users/"+url.PathEscape(name), nil, nil)
}

func (c *controlClient) List(ctx context.Context) ([]api.ControlUser, error) {
	var out []api.ControlUser
	err := c.do(ctx, http.MethodGet, "/users", nil, &out)
	return out, err
}

func (c *controlClient) SetKey(ctx context.Context, user, device, secret string) error {
	return c.do(ctx, http.MethodPut, "/keys/"+url.PathEscape(user)+"/"+url.PathEscape(device), api.ControlRequest{Secret: secret}, nil)
}

func (c *controlClient) DeleteKey(ctx context.Context, user, device string) error {
	return c.do(ctx, http.MethodDelete, "/keys/"+url.PathEscape(user)+"/"+url.PathEscape(device), nil, nil)
}

func (c *controlClient) AddShare(ctx context.Context, s storage.Share) (storage.Share, error) {
	var out storage.Share
	err := c.do(ctx, http.MethodPost, "/shares", s, &out)
	return out, err
}

func (c *controlClient) Shares(ctx context.Context, user string) ([]storage.Share, error) {
	var out []storage.Share
	err := c.do(ctx, http.MethodGet, "/shares?user="+url.QueryEscape(user), nil, &out)
	return out, err
}

func (c *controlClient) Revoke(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/shares/"+url.PathEscape(id), nil, nil)
}

func (c *controlClient) SetGroup(ctx context.Context, g storage.Group) error {
	return c.do(ctx, http.MethodPut, "/groups/"+url.PathEscape(g.Name), g, nil)
}

func (c *controlClient) DeleteGroup(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/groups/"+url.PathEscape(name), nil, nil)
}

func (c *controlClient) Groups(ctx context.Context) ([]storage.Group, error) {
	var out []storage.Group
	err := c.do(ctx, http.MethodGet, "/groups", nil, &out)
	return out, err
}

func (c *controlClient) AddFence(ctx context.Context, f storage.Fence) (storage.Fence, error) {
	var out storage.Fence
	err := c.do(ctx, http.MethodPost, "/fences", f, &out)
	return out, err
}

func (c *controlClient) Fences(ctx context.Context, owner string) ([]storage.Fence, error) {
	var out []storage.Fence
	err := c.do(ctx, http.MethodGet, "/fences?owner="+url.QueryEscape(owner), nil, &out)
	return out, err
}

func (c *controlClient) DeleteFence(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/fences/"+url.PathEscape(id), nil, nil)
}

func (c *controlClient) AddWebhook(ctx context.Context, w storage.Webhook) (storage.Webhook, error) {
	var out storage.Webhook
	err := c.do(ctx, http.MethodPost, "/webhooks", w, &out)
	return out, err
}

func (c *controlClient) Webhooks(ctx context.Context, owner string) ([]storage.Webhook, error) {
	var out []storage.Webhook
	err := c.do(ctx, http.MethodGet, "/webhooks?owner="+url.QueryEscape(owner), nil, &out)
	return out, err
}

func (c *controlClient) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/webhooks/"+url.PathEscape(id), nil, nil)
}

// Export streams GET /export into w. It has no timeout (a year takes a
// while); ctx ends it. A failure after the body began comes in the
// api.ExportErrorTrailer trailer.
func (c *controlClient) Export(ctx context.Context, opts api.ExportOptions, w io.Writer) error {
	v := url.Values{"user": {opts.User}, "device": {opts.Device}, "format": {opts.Format},
		"from": {strconv.FormatInt(opts.From, 10)}, "to": {strconv.FormatInt(opts.To, 10)}}
	if opts.Fields != "" {
		v.Set("fields", opts.Fields)
	}
	if opts.Gap != 0 {
		v.Set("gap", strconv.FormatInt(opts.Gap, 10))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://wherehouse/export?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: c.hc.Transport}).Do(req)
	if err != nil {
		return fmt.Errorf("talk to the running server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ce api.ControlError
		json.NewDecoder(resp.Body).Decode(&ce)
		if ce.Code == "invalid" {
			return fmt.Errorf("%w: %s", api.ErrExportInvalid, ce.Message)
		}
		return fmt.Errorf("server: %s", ce.Message)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export from the running server: %w", err)
	}
	if msg := resp.Trailer.Get(api.ExportErrorTrailer); msg != "" {
		return fmt.Errorf("export stopped early, the output is incomplete: server: %s", msg)
	}
	return nil
}

// Import streams one file to the running server (POST /import), which
// imports it into its store, and reads back its progress lines and the
// summary. It has no timeout (a big history takes a while); ctx ends it.
func (c *controlClient) Import(ctx context.Context, r io.Reader, src importer.Source, opts importer.RunOptions) (importer.Summary, error) {
	v := url.Values{"format": {src.Format}, "user": {src.User}, "device": {src.Device}, "name": {src.Name}}
	if !src.ModTime.IsZero() {
		v.Set("mtime", strconv.FormatInt(src.ModTime.UnixMilli(), 10))
	}
	if opts.Examples < 0 {
		v.Set("verbose", "1")
	}
	// NopCloser: the caller closes its file; the body is sent chunked.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://wherehouse/import?"+v.Encode(), io.NopCloser(r))
	if err != nil {
		return importer.Summary{}, err
	}
	resp, err := (&http.Client{Transport: c.hc.Transport}).Do(req)
	if err != nil {
		return importer.Summary{}, fmt.Errorf("talk to the running server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ce api.ControlError
		json.NewDecoder(resp.Body).Decode(&ce)
		return importer.Summary{}, fmt.Errorf("server: %s", ce.Message)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var line api.ControlImportLine
		if err := dec.Decode(&line); err != nil {
			if ctx.Err() != nil {
				return importer.Summary{}, ctx.Err()
			}
			return importer.Summary{}, fmt.Errorf("the running server stopped answering before the import ended: %w", err)
		}
		if line.Progress != nil && opts.Progress != nil {
			opts.Progress(*line.Progress)
		}
		if line.Summary == nil {
			continue
		}
		switch line.Code {
		case "":
			return *line.Summary, nil
		case "bad_input":
			return *line.Summary, importer.InputError(line.Error)
		}
		return *line.Summary, fmt.Errorf("server: %s", line.Error)
	}
}
