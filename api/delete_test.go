package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
)

// t0 is the fix time of the seeded history: alice/phone has fixes at t0,
// t0+1 and t0+2, alice/tablet and carol/phone one at t0.
const t0 int64 = 1_700_000_000

// newDeleteAPI is the web API with deletion, four users (alice; bob, who
// sees alice's history through a share; carol, who sees nothing of hers;
// root, an admin; all with alicePassword) and some history.
func newDeleteAPI(t *testing.T) *webAPI {
	t.Helper()
	a := newWebAPI(t)
	ctx := context.Background()
	for _, u := range []storage.User{{Name: "bob"}, {Name: "carol"}, {Name: "root", Admin: true}} {
		u.PasswordHash, u.Created = cheapHash(t, alicePassword), time.Now()
		if err := a.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.policy.AddShare(ctx, storage.Share{Owner: "alice", Viewer: "bob", History: true}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	a.Server = New(Deps{Store: a.store, Devices: a.store, Accounts: a.accounts, Policy: a.policy, Live: recorder.NewLive(nil),
		Log: log, Gatherer: prometheus.NewRegistry(), Version: "test", Sessions: a.store,
		Retention: retention.New(a.store, log, retention.Options{})})
	var msgs []storage.Message
	for _, m := range []struct {
		user, device string
		tst          int64
	}{{"alice", "phone", t0}, {"alice", "phone", t0 + 1}, {"alice", "phone", t0 + 2}, {"alice", "tablet", t0}, {"carol", "phone", t0}} {
		msgs = append(msgs, storage.Message{
			User: m.user, Device: m.device, Topic: "owntracks/" + m.user + "/" + m.device, Type: "location",
			TST: m.tst, Received: m.tst * 1000, Lat: 52, Lon: 13,
			Payload: fmt.Appendf(nil, `{"_type":"location","lat":52,"lon":13,"tst":%d,"tid":"ph"}`, m.tst),
		})
	}
	if _, err := a.store.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := a.store.PutDevice(ctx, storage.Device{User: "alice", Device: "phone", Online: true}); err != nil {
		t.Fatal(err)
	}
	return a
}

func as(name string) [2]string { return [2]string{name, alicePassword} }

// trackOf returns the tsts /api/0/locations gives the caller.
func (a *webAPI) trackOf(t *testing.T, caller, user, device string) []int64 {
	t.Helper()
	w := a.do(t, request{method: http.MethodGet, basic: as(caller),
		path: fmt.Sprintf("/api/0/locations?user=%s&device=%s&from=%d&to=%d", user, device, t0-100, t0+100)})
	if w.Code != http.StatusOK {
		t.Fatalf("locations: status %d: %s", w.Code, w.Body)
	}
	var r struct{ Data []struct{ TST int64 } }
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, d := range r.Data {
		out = append(out, d.TST)
	}
	return out
}

// lastOf returns the tst of each last position /api/0/last gives the
// caller, as user/device -> tst.
func (a *webAPI) lastOf(t *testing.T, caller string) map[string]int64 {
	t.Helper()
	w := a.do(t, request{method: http.MethodGet, path: "/api/0/last", basic: as(caller)})
	if w.Code != http.StatusOK {
		t.Fatalf("last: status %d: %s", w.Code, w.Body)
	}
	var list []struct {
		Username, Device string
		TST              int64
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, l := range list {
		out[l.Username+"/"+l.Device] = l.TST
	}
	return out
}

// TestDeletePermissions: the owner and admins may delete and hide; a viewer
// never, not even with the history shared (403), and someone who cannot
// see the device gets a 404 as if it did not exist. A refused request
// changes nothing.
func TestDeletePermissions(t *testing.T) {
	type want struct{ owner, admin, viewer, stranger int }
	tst := fmt.Sprint(t0 + 1)
	for _, tc := range []struct {
		name, method, path, body string
		want                     want
		changes                  bool
	}{
		{"delete range", http.MethodDelete, fmt.Sprintf("/api/v1/locations?user=alice&device=phone&from=%d&to=%d", t0, t0+1), "", want{200, 200, 403, 404}, true},
		{"delete point", http.MethodDelete, "/api/v1/locations/alice/phone/" + tst, "", want{200, 200, 403, 404}, true},
		{"hide point", http.MethodPost, "/api/v1/locations/alice/phone/" + tst + "/hide", "", want{200, 200, 403, 404}, true},
		{"unhide point", http.MethodPost, "/api/v1/locations/alice/phone/" + tst + "/unhide", "", want{200, 200, 403, 404}, false},
		{"points at tst", http.MethodGet, "/api/v1/locations/alice/phone/" + tst, "", want{200, 200, 403, 404}, false},
		{"hidden points", http.MethodGet, "/api/v1/locations/hidden?user=alice&device=phone", "", want{200, 200, 403, 404}, false},
		{"delete device", http.MethodDelete, "/api/v1/devices/alice/phone", "", want{200, 200, 403, 404}, true},
		{"delete user data", http.MethodDelete, "/api/v1/users/alice/data", "", want{200, 200, 403, 403}, true},
		{"get policy", http.MethodGet, "/api/v1/retention?user=alice", "", want{200, 200, 403, 403}, false},
		{"set policy", http.MethodPut, "/api/v1/retention?user=alice", `{"delete_after":"365d"}`, want{200, 200, 403, 403}, false},
	} {
		for _, caller := range []struct {
			name   string
			status func(want) int
		}{
			{"alice", func(w want) int { return w.owner }},
			{"root", func(w want) int { return w.admin }},
			{"bob", func(w want) int { return w.viewer }},
			{"carol", func(w want) int { return w.stranger }},
		} {
			t.Run(tc.name+" by "+caller.name, func(t *testing.T) {
				a := newDeleteAPI(t)
				w := a.do(t, request{method: tc.method, path: tc.path, body: tc.body, basic: as(caller.name)})
				if want := caller.status(tc.want); w.Code != want {
					t.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
				}
				track := a.trackOf(t, "alice", "alice", "phone")
				if changed := !slices.Equal(track, []int64{t0, t0 + 1, t0 + 2}); changed != (tc.changes && w.Code == http.StatusOK) {
					t.Errorf("alice/phone after the request = %v", track)
				}
				if w.Code >= 400 {
					if e := apiErrorOf(t, w); e.Code != statusCode(w.Code) {
						t.Errorf("error code %q", e.Code)
					}
				}
			})
		}
	}
	t.Run("no login", func(t *testing.T) {
		a := newDeleteAPI(t)
		if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/devices/alice/phone"}); w.Code != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", w.Code)
		}
	})
	t.Run("cookie without csrf token", func(t *testing.T) {
		a := newDeleteAPI(t)
		ck, info := a.login(t, "alice", alicePassword)
		if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/devices/alice/phone", cookie: ck}); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
		if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/devices/alice/phone", cookie: ck, csrf: info.CSRF}); w.Code != http.StatusOK {
			t.Errorf("with the token: status %d, want 200: %s", w.Code, w.Body)
		}
	})
}

func TestDeleteRangeAPI(t *testing.T) {
	a := newDeleteAPI(t)
	iso := func(tst int64) string { return time.Unix(tst, 0).UTC().Format("2006-01-02T15:04:05") }
	for _, tc := range []struct{ name, query string }{
		{"no from", "user=alice&device=phone&to=" + iso(t0)},
		{"no to", "user=alice&device=phone&from=" + iso(t0)},
		{"no device", "user=alice&from=" + iso(t0) + "&to=" + iso(t0)},
		{"bad time", "user=alice&device=phone&from=yesterday&to=" + iso(t0)},
		{"from after to", "user=alice&device=phone&from=" + iso(t0+2) + "&to=" + iso(t0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/locations?" + tc.query, basic: as("alice")}); w.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %s", w.Code, w.Body)
			}
		})
	}
	// user defaults to the caller; from and to are inclusive.
	w := a.do(t, request{method: http.MethodDelete, basic: as("alice"), path: "/api/v1/locations?device=phone&from=" + iso(t0+1) + "&to=" + iso(t0+2)})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"deleted":{"locations":2,"messages":0,"events":0}`) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := a.trackOf(t, "alice", "alice", "phone"); !slices.Equal(got, []int64{t0}) {
		t.Errorf("track = %v, want [%d]", got, t0)
	}
	if got := a.lastOf(t, "alice"); got["alice/phone"] != t0 || got["alice/tablet"] != t0 {
		t.Errorf("last = %v, want the phone back at %d", got, t0)
	}
	// A date alone as to is the end of that day.
	day := time.Unix(t0, 0).UTC().Format("2006-01-02")
	w = a.do(t, request{method: http.MethodDelete, basic: as("alice"), path: "/api/v1/locations?user=alice&device=tablet&from=" + day + "&to=" + day})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"locations":1`) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := a.lastOf(t, "alice"); len(got) != 1 {
		t.Errorf("last = %v, want only the phone", got)
	}
}

func TestHideAPI(t *testing.T) {
	a := newDeleteAPI(t)
	newest := fmt.Sprint(t0 + 2)
	w := a.do(t, request{method: http.MethodPost, path: "/api/v1/locations/alice/phone/" + newest + "/hide", basic: as("alice")})
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"changed":1}` {
		t.Fatalf("hide: status %d: %s", w.Code, w.Body)
	}
	for _, viewer := range []string{"alice", "bob"} {
		if got := a.trackOf(t, viewer, "alice", "phone"); !slices.Equal(got, []int64{t0, t0 + 1}) {
			t.Errorf("locations for %s = %v: the hidden point is not left out", viewer, got)
		}
		if got := a.lastOf(t, viewer)["alice/phone"]; got != t0+1 {
			t.Errorf("last for %s = %d, want %d", viewer, got, t0+1)
		}
	}
	w = a.do(t, request{method: http.MethodGet, path: "/api/v1/locations/hidden?device=phone", basic: as("alice")})
	var hidden []storedLocationJSON
	if err := json.Unmarshal(w.Body.Bytes(), &hidden); err != nil || len(hidden) != 1 || hidden[0].TST != t0+2 || !hidden[0].Hidden || hidden[0].ID == "" {
		t.Fatalf("hidden: %s (%v)", w.Body, err)
	}
	w = a.do(t, request{method: http.MethodGet, path: "/api/v1/locations/alice/phone/" + newest, basic: as("root")})
	var at []storedLocationJSON
	if err := json.Unmarshal(w.Body.Bytes(), &at); err != nil || len(at) != 1 || at[0].ID != hidden[0].ID || !strings.Contains(string(at[0].Payload), `"tst":1700000002`) {
		t.Fatalf("locations at tst: %s (%v)", w.Body, err)
	}
	if w := a.do(t, request{method: http.MethodPost, path: "/api/v1/locations/alice/phone/" + newest + "/unhide?id=" + hidden[0].ID, basic: as("alice")}); w.Code != http.StatusOK {
		t.Fatalf("unhide: status %d: %s", w.Code, w.Body)
	}
	if got := a.trackOf(t, "bob", "alice", "phone"); !slices.Equal(got, []int64{t0, t0 + 1, t0 + 2}) {
		t.Errorf("locations after unhide = %v", got)
	}
	if got := a.lastOf(t, "alice")["alice/phone"]; got != t0+2 {
		t.Errorf("last after unhide = %d", got)
	}
	for _, path := range []string{
		"/api/v1/locations/alice/phone/" + fmt.Sprint(t0+50) + "/hide",
		"/api/v1/locations/alice/phone/" + newest + "/hide?id=0000000000000000",
		"/api/v1/locations/alice/watch/" + newest + "/hide",
	} {
		if w := a.do(t, request{method: http.MethodPost, path: path, basic: as("alice")}); w.Code != http.StatusNotFound {
			t.Errorf("POST %s: status %d, want 404", path, w.Code)
		}
	}
	if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/locations/alice/phone/" + newest, basic: as("alice")}); w.Code != http.StatusOK {
		t.Errorf("delete point: status %d: %s", w.Code, w.Body)
	}
	if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/locations/alice/phone/" + newest, basic: as("alice")}); w.Code != http.StatusNotFound {
		t.Errorf("delete it again: status %d, want 404", w.Code)
	}
}

func TestDeleteDeviceAPI(t *testing.T) {
	a := newDeleteAPI(t)
	w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/devices/alice/phone", basic: as("alice")})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"locations":3`) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := a.lastOf(t, "root"); len(got) != 2 || got["alice/phone"] != 0 {
		t.Errorf("last = %v, want the tablet and carol's phone", got)
	}
	if w := a.do(t, request{method: http.MethodGet, path: "/api/v1/devices/alice/phone", basic: as("alice")}); w.Code != http.StatusNotFound {
		t.Errorf("device state: status %d, want 404", w.Code)
	}
	if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/devices/alice/phone", basic: as("alice")}); w.Code != http.StatusNotFound {
		t.Errorf("again: status %d, want 404", w.Code)
	}
	w = a.do(t, request{method: http.MethodDelete, path: "/api/v1/users/alice/data", basic: as("root")})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"locations":1`) {
		t.Fatalf("user data: status %d: %s", w.Code, w.Body)
	}
	if got := a.lastOf(t, "root"); len(got) != 1 || got["carol/phone"] != t0 {
		t.Errorf("last = %v, want carol's phone", got)
	}
	if w := a.do(t, request{method: http.MethodDelete, path: "/api/v1/users/alice/data", basic: as("alice")}); w.Code != http.StatusNotFound {
		t.Errorf("again: status %d, want 404", w.Code)
	}
	if w := a.do(t, request{method: http.MethodGet, path: "/api/0/list", basic: as("alice")}); !strings.Contains(w.Body.String(), "alice") {
		t.Errorf("the account went with the data: %s", w.Body)
	}
}

func TestRetentionAPI(t *testing.T) {
	a := newDeleteAPI(t)
	put := func(caller, query, body string) (int, RetentionJSON) {
		t.Helper()
		w := a.do(t, request{method: http.MethodPut, path: "/api/v1/retention" + query, body: body, basic: as(caller)})
		var p RetentionJSON
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
		}
		return w.Code, p
	}
	get := func(caller, query string) RetentionJSON {
		t.Helper()
		w := a.do(t, request{method: http.MethodGet, path: "/api/v1/retention" + query, basic: as(caller)})
		var p RetentionJSON
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &p) != nil {
			t.Fatalf("GET: status %d: %s", w.Code, w.Body)
		}
		return p
	}
	if p := get("alice", ""); p.User != "alice" || !p.Keep || p.Description != "keep everything" {
		t.Errorf("default policy = %+v", p)
	}
	if code, p := put("alice", "", `{"delete_after":"365d"}`); code != 200 || p.DeleteAfter != 365*86400 || p.Keep || p.Description != "delete after 365d" || p.Updated.IsZero() {
		t.Errorf("PUT delete_after = %d %+v", code, p)
	}
	if p := get("alice", ""); p.DeleteAfter != 365*86400 {
		t.Errorf("GET after PUT = %+v", p)
	}
	if code, p := put("root", "?user=carol", `{"thin_after":2592000,"thin_to":"5m","delete_after":"365d"}`); code != 200 || p.User != "carol" || p.ThinAfter != 30*86400 || p.ThinTo != 300 {
		t.Errorf("admin PUT for carol: code %d, %+v", code, p)
	}
	if code, p := put("root", "?user=carol", `{"thin_after":"7d","thin_to":"5m","delete_after":"2w"}`); code != 200 || p.Description != "thin to one point per 5m after 7d, delete after 14d" {
		t.Errorf("admin PUT for carol: code %d, %+v", code, p)
	}
	if p := get("root", "?user=carol"); p.ThinAfter != 7*86400 {
		t.Errorf("admin GET for carol = %+v", p)
	}
	for _, body := range []string{
		`{"delete_after":"6m"}`,             // minutes, not months
		`{"delete_after":"365"}`,            // no unit
		`{"thin_after":"30d"}`,              // no interval
		`{"delete_afer":"365d"}`,            // typo
		`{"keep":true,"delete_after":"1d"}`, // both
		`{"delete_after":true}`,
		`[1]`,
	} {
		if code, _ := put("alice", "", body); code != http.StatusBadRequest {
			t.Errorf("PUT %s: status %d, want 400", body, code)
		}
	}
	if code, p := put("alice", "", `{"keep":true}`); code != 200 || !p.Keep {
		t.Errorf("PUT keep = %d %+v", code, p)
	}
	if code, p := put("alice", "", ``); code != 200 || !p.Keep {
		t.Errorf("PUT empty = %d %+v", code, p)
	}
}
