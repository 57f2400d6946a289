package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
)

// inbox collects what a paho subscriber receives.
type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
}

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

// find returns the payloads received on topic.
func (b *inbox) find(topic string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, m := range b.msgs {
		if m.Topic() == topic {
			var v map[string]any
			json.Unmarshal(m.Payload(), &v)
			out = append(out, v)
		}
	}
	return out
}

func subscribe(t *testing.T, c paho.Client, filter string, b *inbox) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, b.handler)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("subscribe %s timed out", filter)
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

// exact is the position alice publishes; no viewer with a coarse share may
// ever see it.
const exactLat, exactLon = 52.520008, 13.404954

func TestSharing(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		s.addUser(u, u+"-pass-123")
	}
	runCLI(t, "", "share", "alice", "bob", "--data", dir)
	out := runCLI(t, "", "share", "alice", "carol", "--precision", "1000", "--data", dir)
	if !strings.Contains(out, "carol now sees alice") {
		t.Fatalf("share output %q", out)
	}
	mq := "tcp://" + s.MQTT
	alice := mustMQTT(t, mq, "alice-phone", "alice", "alice-pass-123")
	bob := mustMQTT(t, mq, "bob-phone", "bob", "bob-pass-123")
	carol := mustMQTT(t, mq, "carol-phone", "carol", "carol-pass-123")
	dave := mustMQTT(t, mq, "dave-phone", "dave", "dave-pass-123")

	var bobIn, carolIn, daveIn inbox
	if code := subscribe(t, bob, "owntracks/alice/phone", &bobIn); code != 1 {
		t.Errorf("bob subscribing to a shared device: %#x, want granted", code)
	}
	subscribe(t, bob, "owntracks/bob/phone", &bobIn)
	if code := subscribe(t, carol, "owntracks/+/+", &carolIn); code != 1 {
		t.Errorf("carol wildcard: %#x", code)
	}
	if code := subscribe(t, dave, "owntracks/alice/phone", &daveIn); code != 0x80 {
		t.Errorf("dave subscribing to an unshared device: %#x, want 0x80", code)
	}
	subscribe(t, dave, "owntracks/+/+", &daveIn)
	subscribe(t, dave, "owntracks/dave/phone", &daveIn)

	now := time.Now().Unix()
	payload := `{"_type":"location","lat":52.520008,"lon":13.404954,"tst":` + itoa(now) +
		`,"tid":"al","acc":5,"SSID":"home-wifi","BSSID":"aa:bb:cc","inregions":["Home"]}`
	publish(t, alice, "owntracks/alice/phone", 1, true, payload)
	publish(t, dave, "owntracks/dave/phone", 1, false, location(1, 1, now, "dv")) // a marker after alice's

	eventually(t, "bob gets alice exactly", func() bool { return len(bobIn.find("owntracks/alice/phone")) == 1 })
	if m := bobIn.find("owntracks/alice/phone")[0]; m["lat"] != exactLat || m["SSID"] != "home-wifi" {
		t.Errorf("bob (exact share) got %v", m)
	}
	eventually(t, "carol gets alice coarsened", func() bool { return len(carolIn.find("owntracks/alice/phone")) == 1 })
	assertCoarse(t, "mqtt to carol", carolIn.find("owntracks/alice/phone")[0])
	eventually(t, "dave's own marker", func() bool { return len(daveIn.find("owntracks/dave/phone")) > 0 })
	if got := daveIn.find("owntracks/alice/phone"); len(got) != 0 {
		t.Errorf("dave (no share) received alice: %v", got)
	}

	// HTTP: the same rules.
	var last []map[string]any
	s.getJSON("carol", "carol-pass-123", "/api/0/last", &last)
	found := false
	for _, l := range last {
		if l["username"] == "alice" {
			found = true
			assertCoarse(t, "/api/0/last for carol", l)
		}
	}
	if !found {
		t.Error("carol does not see alice in /api/0/last")
	}
	var bobLast []map[string]any
	s.getJSON("bob", "bob-pass-123", "/api/0/last?user=alice", &bobLast)
	if len(bobLast) != 1 || bobLast[0]["lat"] != exactLat {
		t.Errorf("bob /last?user=alice = %v", bobLast)
	}
	var list struct{ Results []string }
	s.getJSON("bob", "bob-pass-123", "/api/0/list", &list)
	if strings.Join(list.Results, ",") != "alice,bob" {
		t.Errorf("bob's list = %v, want alice,bob", list.Results)
	}
	var daveLast []map[string]any
	s.getJSON("dave", "dave-pass-123", "/api/0/last", &daveLast)
	for _, l := range daveLast {
		if l["username"] == "alice" {
			t.Errorf("dave sees alice: %v", l)
		}
	}
	// History needs --history: without it, no points (an empty answer, as
	// the Recorder gives for a device without data), and exports are 403.
	if r := s.locations("bob", "bob-pass-123", "alice", "phone"); r.Count != 0 || len(r.Data) != 0 {
		t.Errorf("bob reading alice's history without --history: %d points", r.Count)
	}
	if code, _ := s.get("bob", "bob-pass-123", "/api/0/locations?user=alice&device=phone&format=gpx"); code != http.StatusForbidden {
		t.Errorf("bob exporting alice's history without --history: %d", code)
	}
	runCLI(t, "", "share", "alice", "carol", "--history", "--precision", "5000", "--data", dir)
	r := s.locations("carol", "carol-pass-123", "alice", "phone")
	if r.Count != 1 {
		t.Fatalf("carol's history of alice: %+v", r)
	}
	assertCoarse(t, "history for carol", r.Data[0]) // the finer of her two shares: 1000 m, still coarse

	// The websocket applies the share too.
	hdr := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("carol:carol-pass-123"))}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/last", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte("LAST"))
	for range 1 { // carol has no data of her own: one frame, alice's
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(msg, &m)
		if m["username"] == "alice" {
			assertCoarse(t, "/ws/last for carol", m)
		}
		if strings.Contains(string(msg), "52.520008") {
			t.Errorf("exact position in carol's websocket frame: %s", msg)
		}
	}

	// Revoking stops live delivery at once, for an existing subscription.
	var id string
	for _, line := range strings.Split(runCLI(t, "", "share", "list", "--user", "bob", "--data", dir), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "alice" && f[2] == "bob" {
			id = f[0]
		}
	}
	if id == "" {
		t.Fatal("bob's share not listed")
	}
	runCLI(t, "", "share", "del", id, "--data", dir)
	publish(t, alice, "owntracks/alice/phone", 1, true, location(53, 14, now+1, "al"))
	publish(t, bob, "owntracks/bob/phone", 1, false, location(2, 2, now, "bo")) // marker
	eventually(t, "bob's marker", func() bool { return len(bobIn.find("owntracks/bob/phone")) > 0 })
	if n := len(bobIn.find("owntracks/alice/phone")); n != 1 {
		t.Errorf("bob received %d alice messages, want only the one before revocation", n)
	}
	if code, _ := s.get("bob", "bob-pass-123", "/api/0/last?user=alice"); code == http.StatusOK {
		var l []any
		s.getJSON("bob", "bob-pass-123", "/api/0/last?user=alice", &l)
		if len(l) != 0 {
			t.Errorf("bob still sees alice after revocation: %v", l)
		}
	}

	// Groups: everyone in a group sees everyone in it.
	runCLI(t, "", "group", "set", "family", "alice", "dave", "--data", dir)
	s.getJSON("dave", "dave-pass-123", "/api/0/last?user=alice", &daveLast)
	if len(daveLast) != 1 || daveLast[0]["lat"] != 53.0 {
		t.Errorf("dave (group) sees %v", daveLast)
	}
	// An expired share grants nothing.
	req, _ := http.NewRequest(http.MethodPost, s.url("/api/v1/shares"),
		strings.NewReader(`{"viewer":"bob","until":"2001-01-01T00:00:00Z"}`))
	req.SetBasicAuth("alice", "alice-pass-123")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/shares: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	s.getJSON("bob", "bob-pass-123", "/api/0/last?user=alice", &bobLast)
	if len(bobLast) != 0 {
		t.Errorf("an expired share still shows alice to bob: %v", bobLast)
	}
	// Only the owner (or an admin) shares a user's data.
	req, _ = http.NewRequest(http.MethodPost, s.url("/api/v1/shares"), strings.NewReader(`{"owner":"alice","viewer":"dave"}`))
	req.SetBasicAuth("bob", "bob-pass-123")
	req.Header.Set("Content-Type", "application/json")
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob sharing alice's data: %s, want 403", resp.Status)
	}
	resp.Body.Close()
	// A share of one device lists only that device.
	s.addUser("erin", "erin-pass-123")
	publish(t, alice, "owntracks/alice/tablet", 1, false, location(1, 2, time.Now().Unix(), "at"))
	runCLI(t, "", "share", "alice", "erin", "--device", "tablet", "--data", dir)
	eventually(t, "erin lists alice's tablet only", func() bool {
		var devs struct{ Results []string }
		s.getJSON("erin", "erin-pass-123", "/api/0/list?user=alice", &devs)
		return strings.Join(devs.Results, ",") == "tablet"
	})
}

// assertCoarse fails if a location shows alice's exact position or the
// members that reveal places.
func assertCoarse(t *testing.T, where string, m map[string]any) {
	t.Helper()
	lat, _ := m["lat"].(float64)
	lon, _ := m["lon"].(float64)
	if lat == 0 || lat == exactLat || lon == exactLon {
		t.Errorf("%s: exact or missing position %v,%v", where, lat, lon)
	}
	if acc, _ := m["acc"].(float64); acc < 1000 {
		t.Errorf("%s: acc %v below the share's precision", where, m["acc"])
	}
	for _, k := range []string{"SSID", "BSSID", "inregions"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s: %s leaked", where, k)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
