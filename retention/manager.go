package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// Store is what the manager reads and changes.
type Store interface {
	storage.Retention
	// Devices returns the devices of user that have stored messages.
	Devices(ctx context.Context, user string) ([]string, error)
}

// Defaults of Options.
const (
	DefaultInterval    = time.Hour       // policies are applied this often
	DefaultStartDelay  = time.Minute     // and first this long after start, once the server is up
	DefaultChangeDelay = 5 * time.Second // and this long after a policy changed
	MinAge             = 24 * time.Hour  // the shortest delete-after or thin-after
	MaxThinTo          = 7 * 24 * time.Hour
)

// ErrInvalid wraps a policy the manager refuses.
var ErrInvalid = errors.New("invalid retention policy")

// Options configure a Manager; zero values take the defaults.
type Options struct {
	Now         func() time.Time
	Interval    time.Duration
	StartDelay  time.Duration
	ChangeDelay time.Duration
	// Forget is called after data of a device was deleted (device "" for
	// every device of a user), so components that cache device state drop
	// it: the fence engine and the device tracker of a running server.
	Forget []func(ctx context.Context, user, device string)
	// Purge removes what belongs to a user account besides its recorded
	// data (shares, fences, webhooks, encryption secrets), for
	// DeleteUserData with purge set, before the data goes.
	Purge []func(ctx context.Context, user string) error
}

// Manager applies retention policies and carries out deletions.
type Manager struct {
	store Store
	log   *slog.Logger
	opts  Options
	kick  chan struct{}
	mu    sync.Mutex // one application of the policies at a time
}

// New returns a manager of store's history.
func New(store Store, log *slog.Logger, opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.StartDelay <= 0 {
		opts.StartDelay = DefaultStartDelay
	}
	if opts.ChangeDelay <= 0 {
		opts.ChangeDelay = DefaultChangeDelay
	}
	return &Manager{store: store, log: log, opts: opts, kick: make(chan struct{}, 1)}
}

// Validate checks a policy: ages of at least MinAge (so "6m" meant as six
// months cannot delete everything but six minutes), an interval for
// thinning, and thinning before deleting.
func Validate(p storage.RetentionPolicy) error {
	switch {
	case p.User == "":
		return fmt.Errorf("%w: it needs a user", ErrInvalid)
	case p.DeleteAfter < 0 || p.ThinAfter < 0 || p.ThinTo < 0:
		return fmt.Errorf("%w: durations cannot be negative", ErrInvalid)
	case p.DeleteAfter > 0 && p.DeleteAfter < int64(MinAge.Seconds()):
		return fmt.Errorf("%w: delete-after must be at least 1d (units: d, w, h, m)", ErrInvalid)
	case p.ThinAfter > 0 && p.ThinAfter < int64(MinAge.Seconds()):
		return fmt.Errorf("%w: thin-after must be at least 1d (units: d, w, h, m)", ErrInvalid)
	case (p.ThinAfter > 0) != (p.ThinTo > 0):
		return fmt.Errorf("%w: thin-after and thin-to go together", ErrInvalid)
	case p.ThinTo > int64(MaxThinTo.Seconds()):
		return fmt.Errorf("%w: thin-to must be at most 7d", ErrInvalid)
	case p.DeleteAfter > 0 && p.ThinAfter >= p.DeleteAfter:
		return fmt.Errorf("%w: thin-after must be shorter than delete-after", ErrInvalid)
	}
	return nil
}

// Policy returns user's policy (the zero one keeps everything).
func (m *Manager) Policy(ctx context.Context, user string) (storage.RetentionPolicy, error) {
	return m.store.RetentionPolicy(ctx, user)
}

// Policies returns every policy that deletes or thins, ordered by user.
func (m *Manager) Policies(ctx context.Context) ([]storage.RetentionPolicy, error) {
	return m.store.RetentionPolicies(ctx)
}

// SetPolicy checks and stores a policy, and has it applied shortly.
func (m *Manager) SetPolicy(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionPolicy, error) {
	if err := Validate(p); err != nil {
		return p, err
	}
	p.Updated = time.Time{}
	if !p.Keep() {
		p.Updated = m.opts.Now().UTC().Truncate(time.Second)
	}
	if err := m.store.PutRetentionPolicy(ctx, p); err != nil {
		return p, err
	}
	m.log.Info("retention policy set", "user", p.User, "policy", Describe(p))
	m.Kick()
	return p, nil
}

// Kick has the policies applied ChangeDelay from now (Run does it).
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run applies the policies StartDelay after it starts, then every
// Interval and ChangeDelay after each Kick, until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTimer(m.opts.StartDelay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
			t.Reset(m.opts.ChangeDelay)
		case <-t.C:
			if _, err := m.ApplyAll(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("retention policies not applied", "error", err)
			}
			t.Reset(m.opts.Interval)
		}
	}
}

// Result is what applying one user's policy removed.
type Result struct {
	User    string          `json:"user"`
	Deleted storage.Deleted `json:"deleted"`
	Thinned int             `json:"thinned"` // locations removed by thinning
}

// ApplyAll applies every stored policy now.
func (m *Manager) ApplyAll(ctx context.Context) ([]Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	policies, err := m.store.RetentionPolicies(ctx)
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	out := []Result{}
	var errs []error
	for _, p := range policies {
		r, err := m.apply(ctx, p, now)
		out = append(out, r)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return out, errors.Join(errs...)
}

// apply deletes and thins what p says is too old at now, device by device.
func (m *Manager) apply(ctx context.Context, p storage.RetentionPolicy, now time.Time) (Result, error) {
	r := Result{User: p.User}
	if p.Keep() {
		return r, nil
	}
	devices, err := m.store.Devices(ctx, p.User)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, d := range devices {
		var del storage.Deleted
		thinned := 0
		if p.DeleteAfter > 0 {
			// Older than DeleteAfter: tst < now-DeleteAfter.
			del, err = m.store.DeleteRange(ctx, p.User, d, 0, now.Unix()-p.DeleteAfter-1)
			if err != nil {
				errs = append(errs, err)
			}
		}
		if p.ThinAfter > 0 && err == nil {
			thinned, err = m.store.ThinLocations(ctx, p.User, d, now.Unix()-p.ThinAfter, p.ThinTo)
			if err != nil {
				errs = append(errs, err)
			}
		}
		r.Deleted.Add(del)
		r.Thinned += thinned
		if del.Total() > 0 || thinned > 0 {
			m.log.Info("retention applied", "user", p.User, "device", d,
				"locations", del.Locations, "messages", del.Messages, "events", del.Events, "thinned", thinned)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return r, errors.Join(errs...)
}
