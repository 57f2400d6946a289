package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
)

const retentionSynopsis = `wherehouse retention set USER (--delete-after AGE | --thin-after AGE --thin-to INTERVAL | --keep)
       wherehouse retention list
       wherehouse retention run`

// runRetention manages retention policies.
func runRetention(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("retention", retentionSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	deleteAfter := fs.String("delete-after", "", "with set: delete messages and fence events older than this, e.g. 365d (units d, w, h, m; at least 1d)")
	thinAfter := fs.String("thin-after", "", "with set: thin locations older than this, e.g. 30d, to one per --thin-to per device")
	thinTo := fs.String("thin-to", "", "with set: keep the first location of each interval this long, e.g. 5m")
	keep := fs.Bool("keep", false, "with set: keep everything (the default)")
	pos, err := parseWithPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("retention needs set USER, list or run")
	}
	var p storage.RetentionPolicy
	switch {
	case pos[0] == "set" && len(pos) == 2:
		// Check the policy before touching the store.
		p.User = strings.ToLower(pos[1])
		for _, f := range []struct {
			name, v string
			dst     *int64
		}{{"--delete-after", *deleteAfter, &p.DeleteAfter}, {"--thin-after", *thinAfter, &p.ThinAfter}, {"--thin-to", *thinTo, &p.ThinTo}} {
			if f.v == "" {
				continue
			}
			d, err := retention.ParseDuration(f.v)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			*f.dst = int64(d.Seconds())
		}
		switch {
		case *keep && !p.Keep():
			return errors.New("--keep cannot go with --delete-after or --thin-after")
		case !*keep && p.Keep() && p.ThinTo == 0:
			fs.Usage()
			return errors.New("retention set needs --delete-after AGE, --thin-after AGE with --thin-to INTERVAL, or --keep")
		}
		if err := retention.Validate(p); err != nil {
			return err
		}
	case (pos[0] == "list" || pos[0] == "ls" || pos[0] == "run") && len(pos) == 1:
	default:
		fs.Usage()
		return fmt.Errorf("retention: cannot read %q", strings.Join(pos, " "))
	}

	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	switch pos[0] {
	case "set":
		p, err := admins.SetRetention(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "retention of %s: %s\n", p.User, retention.Describe(p))
		if !p.Keep() {
			fmt.Fprintln(stdout, "The server applies it within a minute of this change or of its start, then hourly; \"wherehouse retention run\" applies it now.")
		}
		return nil
	case "run":
		results, err := admins.ApplyRetention(ctx)
		for _, r := range results {
			fmt.Fprintf(stdout, "%s: %s, %d thinned\n", r.User, describeDeleted(r.Deleted), r.Thinned)
		}
		if len(results) == 0 && err == nil {
			fmt.Fprintln(stdout, "no retention policies: everyone keeps everything")
		}
		return err
	}
	list, err := admins.RetentionPolicies(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tDELETE AFTER\tTHIN AFTER\tTHIN TO\tSET")
	for _, p := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.User, orDash(retention.FormatDuration(p.DeleteAfter)),
			orDash(retention.FormatDuration(p.ThinAfter)), orDash(retention.FormatDuration(p.ThinTo)), p.Updated.Format("2006-01-02 15:04"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Everyone else keeps everything.")
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describeDeleted says what a deletion removed: "12 locations, 3 other
// messages, 1 fence event deleted".
func describeDeleted(n storage.Deleted) string {
	plural := func(k int, one, many string) string {
		if k == 1 {
			return "1 " + one
		}
		return strconv.Itoa(k) + " " + many
	}
	return plural(n.Locations, "location", "locations") + ", " + plural(n.Messages, "other message", "other messages") +
		", " + plural(n.Events, "fence event", "fence events") + " deleted"
}

// newRetention returns the retention manager of a store; forget and purge
// may be nil.
func newRetention(store retention.Store, log *slog.Logger, engine, tracker func(context.Context, string, string), purge func(context.Context, string) error) *retention.Manager {
	var opts retention.Options
	for _, f := range []func(context.Context, string, string){engine, tracker} {
		if f != nil {
			opts.Forget = append(opts.Forget, f)
		}
	}
	if purge != nil {
		opts.Purge = append(opts.Purge, purge)
	}
	return retention.New(store, log, opts)
}

// fenceAdmin is where a user's fences are removed: the fence engine of a
// running server (which holds them in memory), or the store.
type fenceAdmin interface {
	Fences(ctx context.Context, owner string) ([]storage.Fence, error)
	DeleteFence(ctx context.Context, id string) error
}

// storeFences is fenceAdmin on the store, when no server runs.
type storeFences struct{ store storage.Fences }

func (s storeFences) Fences(ctx context.Context, owner string) ([]storage.Fence, error) {
	return s.store.ListFences(ctx, owner)
}

func (s storeFences) DeleteFence(ctx context.Context, id string) error {
	return s.store.DeleteFence(ctx, id)
}

// deviceLister lists a user's devices, by history and by state.
type deviceLister interface {
	Devices(ctx context.Context, user string) ([]string, error)
	ListDevices(ctx context.Context, user string) ([]storage.Device, error)
}

// purgeUser returns what "user del --data-too" removes besides the
// recorded data: the user's shares (given and received) and group
// memberships, fences, webhooks and device secrets. A name given again to
// a new account must not inherit any of them.
func purgeUser(policy *auth.Policy, fences fenceAdmin, hooks storage.Webhooks, secrets *auth.Secrets, devices deviceLister) func(context.Context, string) error {
	return func(ctx context.Context, user string) error {
		for _, sh := range policy.Shares(user) {
			if err := policy.Revoke(ctx, sh.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("revoke share %s: %w", sh.ID, err)
			}
		}
		for _, g := range policy.Groups() {
			if !slices.Contains(g.Members, user) {
				continue
			}
			g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == user })
			if err := policy.SetGroup(ctx, g); err != nil {
				return fmt.Errorf("leave group %s: %w", g.Name, err)
			}
		}
		list, err := fences.Fences(ctx, user)
		if err != nil {
			return err
		}
		for _, f := range list {
			if err := fences.DeleteFence(ctx, f.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("delete fence %s: %w", f.ID, err)
			}
		}
		webhooks, err := hooks.ListWebhooks(ctx, user)
		if err != nil {
			return err
		}
		for _, w := range webhooks {
			if err := hooks.DeleteWebhook(ctx, w.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("delete webhook %s: %w", w.ID, err)
			}
		}
		names := []string{auth.AllDevices}
		byHistory, err := devices.Devices(ctx, user)
		if err != nil {
			return err
		}
		names = append(names, byHistory...)
		states, err := devices.ListDevices(ctx, user)
		if err != nil {
			return err
		}
		for _, d := range states {
			names = append(names, d.Device)
		}
		for _, d := range names {
			if err := secrets.Delete(ctx, user, d); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("delete secret of %s/%s: %w", user, d, err)
			}
		}
		return nil
	}
}

func (d directAdmin) DeleteRange(ctx context.Context, user, device string, from, to int64) (storage.Deleted, error) {
	return d.retention.DeleteRange(ctx, user, device, from, to)
}

func (d directAdmin) DeleteDevice(ctx context.Context, user, device string) (storage.Deleted, error) {
	return d.retention.DeleteDevice(ctx, user, device)
}

func (d directAdmin) DeleteUserData(ctx context.Context, user string, purge bool) (storage.Deleted, error) {
	return d.retention.DeleteUserData(ctx, user, purge)
}

func (d directAdmin) RetentionPolicies(ctx context.Context) ([]storage.RetentionPolicy, error) {
	return d.retention.Policies(ctx)
}

func (d directAdmin) SetRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionPolicy, error) {
	return d.retention.SetPolicy(ctx, p)
}

func (d directAdmin) ApplyRetention(ctx context.Context) ([]retention.Result, error) {
	return d.retention.ApplyAll(ctx)
}

// long is the client without its timeout, for deletions: years of
// history take a while (ctx still ends them).
func (c *controlClient) long() *controlClient {
	return &controlClient{hc: &http.Client{Transport: c.hc.Transport}}
}

func (c *controlClient) DeleteRange(ctx context.Context, user, device string, from, to int64) (storage.Deleted, error) {
	var out storage.Deleted
	q := url.Values{"user": {user}, "device": {device}, "from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	err := c.long().do(ctx, http.MethodDelete, "/locations?"+q.Encode(), nil, &out)
	return out, err
}

func (c *controlClient) DeleteDevice(ctx context.Context, user, device string) (storage.Deleted, error) {
	var out storage.Deleted
	err := c.long().do(ctx, http.MethodDelete, "/devices/"+url.PathEscape(user)+"/"+url.PathEscape(device), nil, &out)
	return out, err
}

func (c *controlClient) DeleteUserData(ctx context.Context, user string, purge bool) (storage.Deleted, error) {
	var out storage.Deleted
	path := "/users/" + url.PathEscape(user) + "/data"
	if purge {
		path += "?purge=1"
	}
	err := c.long().do(ctx, http.MethodDelete, path, nil, &out)
	return out, err
}

func (c *controlClient) RetentionPolicies(ctx context.Context) ([]storage.RetentionPolicy, error) {
	var out []storage.RetentionPolicy
	err := c.do(ctx, http.MethodGet, "/retention", nil, &out)
	return out, err
}

func (c *controlClient) SetRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionPolicy, error) {
	var out storage.RetentionPolicy
	err := c.do(ctx, http.MethodPut, "/retention/"+url.PathEscape(p.User), p, &out)
	return out, err
}

func (c *controlClient) ApplyRetention(ctx context.Context) ([]retention.Result, error) {
	var out []retention.Result
	err := c.long().do(ctx, http.MethodPost, "/retention/run", nil, &out)
	return out, err
}
