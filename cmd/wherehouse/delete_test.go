package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDeleteAndRetention deletes history with the CLI while the server runs
// (over the control socket) and while it is stopped (on the store itself),
// and over HTTP; sets and applies a retention policy; and deletes a user
// with their data. Whatever path a deletion takes, the running server's
// answers follow it at once: /api/0/locations and the recomputed /api/0/last.
func TestDeleteAndRetention(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	const pass = "alice-pass-1"
	s.addUser("alice", pass)
	s.addUser("bob", "bob-pass-123")
	runCLI(t, "", "share", "alice", "bob", "--history", "--data", dir)
	c := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", pass)
	const t0 int64 = 1_700_000_000
	phone := []int64{t0 - 1, t0, t0 + 1, t0 + 100, t0 + 101, t0 + 200, t0 + 300}
	for _, tst := range phone {
		publish(t, c, "owntracks/alice/phone", 1, false, location(52.5, 13.4, tst, "ph"))
	}
	publish(t, c, "owntracks/alice/tablet", 1, false, location(52.5, 13.4, t0, "tb"))
	track := func() []int64 {
		out := []int64{}
		for _, d := range s.locations("alice", pass, "alice", "phone").Data {
			out = append(out, int64(d["tst"].(float64)))
		}
		return out
	}
	last := func() map[string]int64 {
		var list []map[string]any
		s.getJSON("admin", adminPassword, "/api/0/last", &list)
		out := map[string]int64{}
		for _, l := range list {
			out[fmt.Sprint(l["username"], "/", l["device"])] = int64(l["tst"].(float64))
		}
		return out
	}
	eventually(t, "all fixes stored", func() bool { return len(track()) == len(phone) && len(last()) == 2 })

	// Server running: a range, from and to inclusive, times as
	// /api/0/locations reads them.
	from := time.Unix(t0, 0).UTC().Format("2006-01-02T15:04:05")
	out := runCLI(t, "", "delete", "--user", "alice", "--device", "phone", "--from", from, "--to", fmt.Sprint(t0+100), "--data", dir)
	if !strings.Contains(out, "3 locations") {
		t.Errorf("delete output %q, want 3 locations", out)
	}
	if got := track(); !slices.Equal(got, []int64{t0 - 1, t0 + 101, t0 + 200, t0 + 300}) {
		t.Errorf("after the range delete: %v", got)
	}
	// Over HTTP: the newest point; the last position goes back.
	if code, body := s.send(http.MethodDelete, "alice", pass, fmt.Sprintf("/api/v1/locations/alice/phone/%d", t0+300), ""); code != http.StatusOK {
		t.Fatalf("DELETE point: %d %s", code, body)
	}
	if got := last()["alice/phone"]; got != t0+200 {
		t.Errorf("last after deleting the newest point = %d, want %d", got, t0+200)
	}
	// A viewer with history may read but never delete.
	if code, _ := s.send(http.MethodDelete, "bob", "bob-pass-123", "/api/v1/devices/alice/phone", ""); code != http.StatusForbidden {
		t.Errorf("viewer deleting the device: %d, want 403", code)
	}
	// A whole device.
	out = runCLI(t, "", "delete", "--user", "alice", "--device", "tablet", "--all", "--data", dir)
	if !strings.Contains(out, "1 location") {
		t.Errorf("delete --all output %q", out)
	}
	if _, ok := last()["alice/tablet"]; ok {
		t.Error("the deleted tablet still has a last position")
	}
	if code, _ := s.get("alice", pass, "/api/v1/devices/alice/tablet"); code != http.StatusNotFound {
		t.Errorf("device state of the deleted tablet: %d, want 404", code)
	}

	// Server stopped: the CLI opens the store itself.
	s.stop()
	out = runCLI(t, "", "delete", "--user", "alice", "--device", "phone", "--from", fmt.Sprint(t0+101), "--to", fmt.Sprint(t0+101), "--data", dir)
	if !strings.Contains(out, "1 location") {
		t.Errorf("delete output (stopped) %q", out)
	}
	runCLI(t, "", "retention", "set", "alice", "--delete-after", "365d", "--data", dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"delete", "--user", "alice", "--device", "phone"}, "--from and --to"},
		{[]string{"delete", "--user", "alice", "--device", "phone", "--from", "yesterday", "--to", "today"}, "cannot read time"},
		{[]string{"delete", "--user", "alice", "--device", "tablet", "--all"}, "nothing is stored"},
		{[]string{"retention", "set", "alice", "--delete-after", "6m"}, "at least 1d"},
		{[]string{"retention", "set", "alice", "--thin-after", "30d"}, "go together"},
	} {
		cmd := exec.Command(binary, append(tc.args, "--data", dir)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err=%v output %q, want an error saying %q", tc.args, err, out, tc.want)
		}
	}

	s = startServer(t, dir)
	if got := track(); !slices.Equal(got, []int64{t0 - 1, t0 + 200}) {
		t.Errorf("after restart: %v", got)
	}
	if got := last(); got["alice/phone"] != t0+200 || len(got) != 1 {
		t.Errorf("last after restart = %v", got)
	}
	if out := runCLI(t, "", "retention", "list", "--data", dir); !strings.Contains(out, "alice") || !strings.Contains(out, "365d") {
		t.Errorf("retention list: %q", out)
	}
	// The fixes are from 2023: more than a year old.
	if out := runCLI(t, "", "retention", "run", "--data", dir); !strings.Contains(out, "alice: 2 locations") {
		t.Errorf("retention run: %q", out)
	}
	if got := track(); len(got) != 0 {
		t.Errorf("after retention: %v", got)
	}

	// The user with their data: history, shares, account.
	now := time.Now().Unix()
	c = mustMQTT(t, "tcp://"+s.MQTT, "alice-phone-2", "alice", pass)
	publish(t, c, "owntracks/alice/phone", 1, false, location(52.5, 13.4, now, "ph"))
	eventually(t, "new fix stored", func() bool { return last()["alice/phone"] == now })
	c.Disconnect(50)
	if out := runCLI(t, "", "user", "del", "alice", "--data-too", "--data", dir); !strings.Contains(out, "1 location") {
		t.Errorf("user del --data-too: %q", out)
	}
	if got := last(); len(got) != 0 {
		t.Errorf("last after user del --data-too = %v", got)
	}
	if code, _ := s.get("alice", pass, "/api/0/last"); code != http.StatusUnauthorized {
		t.Errorf("deleted account: %d, want 401", code)
	}
	if out := runCLI(t, "", "share", "list", "--data", dir); strings.Contains(out, "alice") {
		t.Errorf("alice's share outlived her: %q", out)
	}
}
