package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAreaQuery stores fixes of three people in Berlin and Paris over
// MQTT and asks /api/v1/locations who was where: a box finds exactly the
// fixes inside it that the caller may see, pages follow each other with
// the cursor, coarse shares and strangers find nothing, bad boxes are
// refused. Then "wherehouse check" and "reindex" run against the live
// server and against the stopped store.
func TestAreaQuery(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	users := map[string]string{"alice": "alice-pass-1", "bob": "bob-pass-123", "carol": "carol-pass-1", "dave": "dave-pass-12"}
	for u, p := range users {
		s.addUser(u, p)
	}
	runCLI(t, "", "share", "bob", "alice", "--history", "--data", dir)
	runCLI(t, "", "share", "bob", "carol", "--history", "--precision", "5000", "--data", dir)
	const t0 int64 = 1_750_000_000
	type fix struct {
		user     string
		lat, lon float64
		tst      int64
	}
	var fixes []fix
	for i := range 12 {
		tst := t0 + int64(i)*600
		fixes = append(fixes,
			fix{"alice", 52.5200 + float64(i)*0.0005, 13.4050, tst},   // Berlin
			fix{"bob", 52.5210, 13.4040 + float64(i)*0.0005, tst + 1}, // Berlin
			fix{"bob", 48.8566, 2.3522 + float64(i)*0.001, tst + 2},   // Paris
		)
	}
	clients := map[string]bool{}
	for _, f := range fixes {
		c := mustMQTT(t, "tcp://"+s.MQTT, f.user+"-phone-"+fmt.Sprint(len(clients)), f.user, users[f.user])
		clients[f.user] = true
		publish(t, c, "owntracks/"+f.user+"/phone", 1, false, location(f.lat, f.lon, f.tst, "ph"))
		c.Disconnect(50)
	}
	berlin := "bbox=13.39,52.51,13.42,52.53"
	page := func(who, query string) (tsts []int64, next string) {
		t.Helper()
		var r struct {
			Data []map[string]any `json:"data"`
			Next string           `json:"next"`
		}
		s.getJSON(who, users[who], "/api/v1/locations?"+query, &r)
		for _, d := range r.Data {
			tsts = append(tsts, int64(d["tst"].(float64)))
		}
		return tsts, r.Next
	}
	want := func(user string, inBerlin bool) []int64 {
		var out []int64
		for _, f := range fixes {
			if (user == "" || f.user == user) && (f.lat > 52) == inBerlin {
				out = append(out, f.tst)
			}
		}
		slices.Sort(out)
		return out
	}
	eventually(t, "every fix stored", func() bool {
		got, _ := page("alice", berlin+"&from=2020-01-01&limit=1000")
		return len(got) == len(want("", true))
	})
	// alice sees her own and bob's Berlin fixes, not Paris.
	got, next := page("alice", berlin+"&from=2020-01-01")
	if !slices.Equal(got, want("", true)) || next != "" {
		t.Errorf("alice in Berlin: %v (next %q), want %v", got, next, want("", true))
	}
	// Pages of 5 add up to the same, in order.
	var paged []int64
	q := berlin + "&from=2020-01-01&limit=5"
	for n := 0; ; n++ {
		p, next := page("alice", q)
		paged = append(paged, p...)
		if next == "" {
			break
		}
		if n > 10 {
			t.Fatal("pages do not end")
		}
		q = berlin + "&from=2020-01-01&limit=5&cursor=" + url.QueryEscape(next)
	}
	if !slices.Equal(paged, want("", true)) {
		t.Errorf("paged: %v, want %v", paged, want("", true))
	}
	// A time range, a device filter, geojson.
	from, to := t0+1200, t0+2400
	got, _ = page("alice", fmt.Sprintf("%s&from=%d&to=%d&user=bob", berlin, from, to))
	if !slices.Equal(got, []int64{t0 + 1201, t0 + 1801}) {
		t.Errorf("bob in Berlin from %d to %d: %v", from, to, got)
	}
	code, body := s.get("alice", users["alice"], "/api/v1/locations?"+berlin+"&from=2020-01-01&format=geojson&limit=3")
	var fc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
		Next     string            `json:"next"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &fc) != nil || fc.Type != "FeatureCollection" || len(fc.Features) != 3 || fc.Next == "" {
		t.Errorf("geojson page: %d %s", code, body)
	}
	// Paris holds only bob's fixes; alice may see them (history share).
	if got, _ := page("alice", "bbox=2.3,48.8,2.4,48.9&from=2020-01-01"); !slices.Equal(got, want("bob", false)) {
		t.Errorf("alice in Paris: %v", got)
	}
	// Denials: a coarse share and a stranger find nothing of bob's; bob
	// finds nothing of alice's (she shares nothing).
	for _, who := range []string{"carol", "dave"} {
		if got, _ := page(who, berlin+"&from=2020-01-01"); len(got) != 0 {
			t.Errorf("%s found %v", who, got)
		}
	}
	if got, _ := page("bob", berlin+"&from=2020-01-01"); !slices.Equal(got, want("bob", true)) {
		t.Errorf("bob in Berlin: %v, want only his own %v", got, want("bob", true))
	}
	if code, _ := s.get("", "", "/api/v1/locations?"+berlin); code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", code)
	}
	for _, bad := range []string{"bbox=1,2,3", "bbox=13.42,52.53,13.39,52.51", "bbox=1,2,3,x", berlin + "&limit=0", berlin + "&cursor=zz", berlin + "&format=gpx"} {
		if code, body := s.get("alice", users["alice"], "/api/v1/locations?"+bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}

	// check and reindex through the running server.
	out := runCLI(t, "", "check", "--data", dir)
	if !strings.Contains(out, "36 locations") || !strings.Contains(out, "no problems found") {
		t.Errorf("check: %s", out)
	}
	out = runCLI(t, "", "reindex", "--data", dir)
	if !strings.Contains(out, "reindexed 36 locations") {
		t.Errorf("reindex: %s", out)
	}
	if got, _ := page("alice", berlin+"&from=2020-01-01"); !slices.Equal(got, want("", true)) {
		t.Errorf("after reindex: %v", got)
	}
	s.stop()
	// And on the stopped store; a damaged file makes check fail.
	out = runCLI(t, "", "check", "--json", "--data", dir)
	var r struct {
		Locations int      `json:"locations"`
		Problems  []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Locations != 36 || len(r.Problems) != 0 {
		t.Errorf("check --json: %s", out)
	}
	runCLI(t, "", "reindex", "--data", dir)
	// Both meta pages gone: check says the file is damaged, and fails.
	f, err := os.OpenFile(filepath.Join(dir, "history.db"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(binary, "check", "--data", dir)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "invalid") {
		t.Errorf("check of a damaged store: %v: %s", err, b)
	}
}
