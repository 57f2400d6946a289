package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

const day = 86400

// now is the fixed clock of these tests: a minute boundary.
var now = time.Unix(1_700_000_000-1_700_000_000%3600, 0)

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fix(user, device string, tst int64) storage.Message {
	return storage.Message{
		User: user, Device: device, Topic: "owntracks/" + user + "/" + device, Type: "location",
		TST: tst, Received: tst * 1000, Lat: 52, Lon: 13,
		Payload: fmt.Appendf(nil, `{"_type":"location","lat":52,"lon":13,"tst":%d}`, tst),
	}
}

func appendFixes(t *testing.T, s storage.Store, user, device string, tsts ...int64) {
	t.Helper()
	var msgs []storage.Message
	for _, tst := range tsts {
		msgs = append(msgs, fix(user, device, tst))
	}
	if _, err := s.Append(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
}

func tstsOf(t *testing.T, s storage.Store, user, device string) []int64 {
	t.Helper()
	out := []int64{}
	q := storage.LocationQuery{User: user, Device: device, From: 0, To: math.MaxInt64}
	if err := s.Locations(t.Context(), q, func(m *storage.Message) error {
		out = append(out, m.TST)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func newManager(s Store, clock *time.Time, opts Options) *Manager {
	opts.Now = func() time.Time { return *clock }
	return New(s, slog.New(slog.DiscardHandler), opts)
}

func TestApplyPolicies(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	clock := now
	m := newManager(s, &clock, Options{})
	n := now.Unix()

	// alice deletes after 30 days: exactly 30 days old is not older.
	appendFixes(t, s, "alice", "phone", n-31*day, n-30*day-1, n-30*day, n-day)
	appendFixes(t, s, "alice", "old", n-40*day) // a device with nothing newer
	// bob thins after 7 days to one point per 5 minutes.
	var bobs []int64
	for i := range int64(120) {
		bobs = append(bobs, n-8*day+60*i) // two hours, one a minute
	}
	recent := []int64{n - 7*day, n - 7*day + 60, n - 60}
	appendFixes(t, s, "bob", "phone", append(bobs, recent...)...)
	// carol keeps everything.
	appendFixes(t, s, "carol", "phone", n-1000*day, n-1)

	for _, p := range []storage.RetentionPolicy{
		{User: "alice", DeleteAfter: 30 * day},
		{User: "bob", ThinAfter: 7 * day, ThinTo: 300},
	} {
		if _, err := m.SetPolicy(ctx, p); err != nil {
			t.Fatalf("SetPolicy(%s): %v", p.User, err)
		}
	}
	got, err := m.ApplyAll(ctx)
	if err != nil {
		t.Fatalf("ApplyAll: %v", err)
	}
	want := []Result{
		{User: "alice", Deleted: storage.Deleted{Locations: 3}},
		{User: "bob", Thinned: 120 - 24},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ApplyAll = %+v, want %+v", got, want)
	}
	if got := tstsOf(t, s, "alice", "phone"); !slices.Equal(got, []int64{n - 30*day, n - day}) {
		t.Errorf("alice/phone = %v", got)
	}
	if devices, _ := s.Devices(ctx, "alice"); !slices.Equal(devices, []string{"phone"}) {
		t.Errorf("alice's devices = %q, want [phone]", devices)
	}
	var wantBob []int64
	for i := int64(0); i < 120; i += 5 {
		wantBob = append(wantBob, n-8*day+60*i)
	}
	if got := tstsOf(t, s, "bob", "phone"); !slices.Equal(got, append(wantBob, recent...)) {
		t.Errorf("bob/phone = %v, want %v", got, append(wantBob, recent...))
	}
	if got := tstsOf(t, s, "carol", "phone"); len(got) != 2 {
		t.Errorf("carol/phone = %v, want both kept", got)
	}

	if got, err := m.ApplyAll(ctx); err != nil || !slices.Equal(got, []Result{{User: "alice"}, {User: "bob"}}) {
		t.Errorf("ApplyAll again = %+v, %v; want nothing removed", got, err)
	}

	// A day later the next point is too old.
	clock = now.Add(24 * time.Hour)
	if _, err := m.ApplyAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tstsOf(t, s, "alice", "phone"); !slices.Equal(got, []int64{n - day}) {
		t.Errorf("alice/phone a day later = %v", got)
	}
	last, err := s.LastLocations(ctx, "alice", "")
	if err != nil || len(last) != 1 || last[0].TST != n-day {
		t.Errorf("LastLocations(alice) = %+v, %v", last, err)
	}
}

func TestRunAppliesAfterChange(t *testing.T) {
	s := openStore(t)
	clock := now
	m := newManager(s, &clock, Options{StartDelay: time.Hour, ChangeDelay: time.Millisecond})
	n := now.Unix()
	appendFixes(t, s, "alice", "phone", n-400*day, n-day)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	if _, err := m.SetPolicy(t.Context(), storage.RetentionPolicy{User: "alice", DeleteAfter: 365 * day}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(tstsOf(t, s, "alice", "phone")) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("policy not applied 10s after it was set")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    storage.RetentionPolicy
		ok   bool
	}{
		{"keep", storage.RetentionPolicy{User: "a"}, true},
		{"delete", storage.RetentionPolicy{User: "a", DeleteAfter: 365 * day}, true},
		{"thin", storage.RetentionPolicy{User: "a", ThinAfter: 30 * day, ThinTo: 300}, true},
		{"both", storage.RetentionPolicy{User: "a", DeleteAfter: 365 * day, ThinAfter: 30 * day, ThinTo: 300}, true},
		{"one day", storage.RetentionPolicy{User: "a", DeleteAfter: day}, true},
		{"no user", storage.RetentionPolicy{DeleteAfter: 365 * day}, false},
		{"six minutes", storage.RetentionPolicy{User: "a", DeleteAfter: 360}, false},
		{"thin soon", storage.RetentionPolicy{User: "a", ThinAfter: 3600, ThinTo: 60}, false},
		{"thin without interval", storage.RetentionPolicy{User: "a", ThinAfter: 30 * day}, false},
		{"interval without thin", storage.RetentionPolicy{User: "a", ThinTo: 60}, false},
		{"thin after delete", storage.RetentionPolicy{User: "a", DeleteAfter: 30 * day, ThinAfter: 30 * day, ThinTo: 60}, false},
		{"negative", storage.RetentionPolicy{User: "a", DeleteAfter: -day}, false},
		{"huge interval", storage.RetentionPolicy{User: "a", ThinAfter: 30 * day, ThinTo: 30 * day}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.p)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Validate(%+v) = %v, want ok %v", tc.p, err, tc.ok)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"365d", 365 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"5m", 5 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"30", 0, false},
		{"", 0, false},
		{"-3d", 0, false},
		{"d", 0, false},
		{"3y", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for in, want := range map[int64]string{0: "", 365 * day: "365d", 7200: "2h", 300: "5m", 90: "90s"} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestDeleteForgetsAndPurges(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	clock := now
	var forgot []string
	var purged []string
	m := newManager(s, &clock, Options{
		Forget: []func(context.Context, string, string){func(_ context.Context, user, device string) {
			forgot = append(forgot, user+"/"+device)
		}},
		Purge: []func(context.Context, string) error{func(_ context.Context, user string) error {
			purged = append(purged, user)
			return nil
		}},
	})
	n := now.Unix()
	appendFixes(t, s, "alice", "phone", n-10, n-5)
	appendFixes(t, s, "alice", "tablet", n-10)
	appendFixes(t, s, "bob", "phone", n-10)

	if _, err := m.DeleteDevice(ctx, "alice", "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DeleteDevice(ctx, "alice", "phone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteDevice again: %v, want ErrNotFound", err)
	}
	if !slices.Equal(forgot, []string{"alice/phone"}) {
		t.Errorf("forgotten = %q, want [alice/phone]", forgot)
	}

	if _, err := m.SetPolicy(ctx, storage.RetentionPolicy{User: "alice", DeleteAfter: 30 * day}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DeleteUserData(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Policy(ctx, "alice"); p.Keep() {
		t.Error("deleting the data removed the policy")
	}
	if _, err := m.DeleteUserData(ctx, "alice", true); err != nil {
		t.Errorf("DeleteUserData(purge) of a user without data: %v", err)
	}
	if p, _ := m.Policy(ctx, "alice"); !p.Keep() {
		t.Errorf("policy after purge = %+v, want none", p)
	}
	if !slices.Equal(purged, []string{"alice"}) || !slices.Equal(forgot, []string{"alice/phone", "alice/"}) {
		t.Errorf("purged %q, forgotten %q", purged, forgot)
	}
	if got := tstsOf(t, s, "bob", "phone"); len(got) != 1 {
		t.Errorf("bob's data: %v", got)
	}
}
