package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// Grant is what a viewer may see of one owner's device.
type Grant struct {
	Precision int  // metres positions are coarsened to; 0 for exact
	History   bool // may read the track history, not only the live position
}

// ErrShareInvalid is returned for a share that makes no sense.
var ErrShareInvalid = errors.New("invalid share")

// Policy decides who sees whom: yourself, everyone for admins, and what
// shares and groups grant. It keeps shares in memory, so a check per MQTT
// delivery is a map lookup; every change goes through it and takes effect
// at once.
type Policy struct {
	store storage.Shares
	now   func() time.Time

	// EventTopic is the prefix of the server's JSON event topic ("" for
	// none); set it before the policy is used.
	EventTopic string

	mu     sync.RWMutex
	shares map[string][]storage.Share // owner -> shares
	groups []storage.Group
}

// NewPolicy loads the shares and groups in store.
func NewPolicy(ctx context.Context, store storage.Shares) (*Policy, error) {
	p := &Policy{store: store, now: time.Now}
	if err := p.reload(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Policy) reload(ctx context.Context) error {
	shares, err := p.store.ListShares(ctx)
	if err != nil {
		return fmt.Errorf("load shares: %w", err)
	}
	groups, err := p.store.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("load groups: %w", err)
	}
	byOwner := map[string][]storage.Share{}
	for _, s := range shares {
		byOwner[s.Owner] = append(byOwner[s.Owner], s)
	}
	p.mu.Lock()
	p.shares, p.groups = byOwner, groups
	p.mu.Unlock()
	return nil
}

// Grant returns what viewer may see of owner's device ("" for the owner as
// a whole: the best grant over any device). ok is false when nothing.
func (p *Policy) Grant(viewer storage.User, owner, device string) (g Grant, ok bool) {
	if viewer.Admin || viewer.Name == owner {
		return Grant{History: true}, true
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	now := p.now()
	for _, s := range p.shares[owner] {
		if s.Viewer != viewer.Name || (device != "" && s.Device != "" && s.Device != device) {
			continue
		}
		if !s.Until.IsZero() && !now.Before(s.Until) {
			continue
		}
		g, ok = better(g, ok, Grant{Precision: s.Precision, History: s.History}), true
	}
	for _, gr := range p.groups {
		if slices.Contains(gr.Members, owner) && slices.Contains(gr.Members, viewer.Name) {
			g, ok = better(g, ok, Grant{}), true
		}
	}
	return g, ok
}

// better combines two grants: the finer precision and any history.
func better(a Grant, aok bool, b Grant) Grant {
	if !aok {
		return b
	}
	if b.Precision < a.Precision {
		a.Precision = b.Precision
	}
	a.History = a.History || b.History
	return a
}

// CanSee reports whether viewer may see anything of owner.
func (p *Policy) CanSee(viewer storage.User, owner string) bool {
	_, ok := p.Grant(viewer, owner, "")
	return ok
}

// Owners returns the users, other than viewer, that viewer may see through
// shares and groups (admins: see Grant; callers list everyone for them).
func (p *Policy) Owners(viewer storage.User) []string {
	p.mu.RLock()
	var out []string
	for owner := range p.shares {
		out = append(out, owner)
	}
	for _, g := range p.groups {
		if slices.Contains(g.Members, viewer.Name) {
			out = append(out, g.Members...)
		}
	}
	p.mu.RUnlock()
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(o string) bool { return o == viewer.Name || !p.CanSee(viewer, o) })
}

// CanRead reports whether a message on topic may be delivered to viewer.
// Besides owntracks/<user>/<device>/..., the server's JSON event topic
// (<EventTopic>/<user>/<device>) is readable with an exact grant.
func (p *Policy) CanRead(viewer storage.User, topic string) (Grant, bool) {
	if viewer.Admin {
		return Grant{History: true}, true
	}
	if rest, ok := strings.CutPrefix(topic, p.EventTopic+"/"); ok && p.EventTopic != "" {
		user, device, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(device, "/") {
			return Grant{}, false
		}
		g, ok := p.Grant(viewer, user, device)
		return g, ok && g.Precision == 0
	}
	parts := strings.Split(topic, "/")
	if len(parts) < 3 || parts[0] != TopicPrefix {
		return Grant{}, false
	}
	g, ok := p.Grant(viewer, strings.ToLower(parts[1]), strings.ToLower(parts[2]))
	if ok && g.Precision > 0 && len(parts) > 3 && (strings.HasPrefix(parts[3], "waypoint") || parts[3] == "event") {
		// Regions are exact places, and an enter or leave tells where
		// someone is more exactly than a coarse share does.
		return g, false
	}
	return g, ok
}

// CanSubscribe reports whether viewer may subscribe to filter: as
// CanSubscribe, and also wildcards under the event topic (each delivery is
// checked with CanRead).
func (p *Policy) CanSubscribe(viewer storage.User, filter string) bool {
	if CanSubscribe(viewer, filter) {
		return true
	}
	if p.EventTopic == "" || !strings.ContainsAny(filter, "+#") {
		return false
	}
	root, _, _ := strings.Cut(p.EventTopic, "/")
	first, _, _ := strings.Cut(filter, "/")
	return first == root
}

// AddShare stores a new share and applies it. The ID is generated.
func (p *Policy) AddShare(ctx context.Context, s storage.Share) (storage.Share, error) {
	if s.Owner == "" || s.Viewer == "" || s.Owner == s.Viewer {
		return s, fmt.Errorf("%w: need an owner and a different viewer", ErrShareInvalid)
	}
	if s.Precision < 0 {
		return s, fmt.Errorf("%w: precision must be 0 (exact) or more metres", ErrShareInvalid)
	}
	b := make([]byte, 8)
	rand.Read(b)
	s.ID = hex.EncodeToString(b)
	s.Created = p.now().UTC()
	if err := p.store.PutShare(ctx, s); err != nil {
		return s, err
	}
	return s, p.reload(ctx)
}

// Shares returns the shares where user is owner or viewer (all for "").
func (p *Policy) Shares(user string) []storage.Share {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := []storage.Share{}
	for _, list := range p.shares {
		for _, s := range list {
			if user == "" || s.Owner == user || s.Viewer == user {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b storage.Share) int { return a.Created.Compare(b.Created) })
	return out
}

// Share returns one share by ID.
func (p *Policy) Share(id string) (storage.Share, bool) {
	for _, s := range p.Shares("") {
		if s.ID == id {
			return s, true
		}
	}
	return storage.Share{}, false
}

// Revoke deletes a share; it stops applying at once, live MQTT
// subscriptions included (deliveries are checked per message).
func (p *Policy) Revoke(ctx context.Context, id string) error {
	if err := p.store.DeleteShare(ctx, id); err != nil {
		return err
	}
	return p.reload(ctx)
}

// SetGroup creates or replaces a group.
func (p *Policy) SetGroup(ctx context.Context, g storage.Group) error {
	if !ValidName(g.Name) {
		return fmt.Errorf("%w: group name %q", ErrShareInvalid, g.Name)
	}
	slices.Sort(g.Members)
	g.Members = slices.Compact(g.Members)
	if err := p.store.PutGroup(ctx, g); err != nil {
		return err
	}
	return p.reload(ctx)
}

// DeleteGroup removes a group.
func (p *Policy) DeleteGroup(ctx context.Context, name string) error {
	if err := p.store.DeleteGroup(ctx, name); err != nil {
		return err
	}
	return p.reload(ctx)
}

// Groups returns every group.
func (p *Policy) Groups() []storage.Group {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.groups)
}
