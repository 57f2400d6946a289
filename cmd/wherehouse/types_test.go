package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
)

// lastOf returns /api/0/last as seen by user.
func (s *testServer) lastOf(user, password, query string) []map[string]any {
	s.t.Helper()
	var last []map[string]any
	s.getJSON(user, password, "/api/0/last"+query, &last)
	return last
}

// face is a stand-in for the base64 JPEG of an iOS card.
var face = base64.StdEncoding.EncodeToString([]byte("\xff\xd8\xff\xe0\x00\x10JFIF not really a picture"))

// TestCardAndLWT: an iOS card retained on the base topic (classified by
// _type, not topic) gives /api/0/last its name and face; an Android Last
// Will (no tst) turns the device offline until its next location.
func TestCardAndLWT(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-1")
	c := mustMQTT(t, "tcp://"+s.MQTT, "types-card-alice", "alice", "alice-pass-1")
	now := time.Now().Unix()
	publish(t, c, "owntracks/alice/phone", 1, true, fmt.Sprintf(`{"_type":"card","name":"Alice","face":%q,"tid":"al"}`, face))
	publish(t, c, "owntracks/alice/phone", 1, true, location(52.5, 13.4, now-60, "ap"))
	publish(t, c, "owntracks/alice/phone", 0, false, `{"_type":"lwt"}`)

	eventually(t, "status offline in /api/0/last", func() bool {
		last := s.lastOf("alice", "alice-pass-1", "")
		return len(last) == 1 && last[0]["status"] == "offline"
	})
	last := s.lastOf("alice", "alice-pass-1", "?user=alice&device=phone")
	if len(last) != 1 {
		t.Fatalf("/api/0/last = %v, want one object", last)
	}
	if last[0]["name"] != "Alice" || last[0]["face"] != face {
		t.Errorf("last name = %v, face = %.20v…; want the card's", last[0]["name"], last[0]["face"])
	}
	if last[0]["_type"] != "location" || last[0]["lat"] != 52.5 || last[0]["tid"] != "ap" {
		t.Errorf("last = %v, want the location with its tid", last[0])
	}
	// fields= limits the added members too.
	if only := s.lastOf("alice", "alice-pass-1", "?fields=lat,name,status"); len(only) != 1 || len(only[0]) != 3 {
		t.Errorf("/api/0/last?fields=lat,name,status = %v", only)
	}

	// The native device view agrees.
	var dev struct {
		User, Device, Transport, TID, Name string
		Online                             bool
		LastSeen                           time.Time `json:"last_seen"`
		Card                               map[string]any
		Waypoints                          []any
	}
	s.getJSON("alice", "alice-pass-1", "/api/v1/devices/alice/phone", &dev)
	if dev.Online || dev.Name != "Alice" || dev.TID != "ap" || dev.Transport != "mqtt" ||
		dev.Card["face"] != face || dev.Waypoints == nil || time.Since(dev.LastSeen) > time.Hour {
		t.Errorf("/api/v1/devices/alice/phone = %+v", dev)
	}
	var cards []map[string]any
	s.getJSON("alice", "alice-pass-1", "/api/v1/cards", &cards)
	if len(cards) != 1 || cards[0]["name"] != "Alice" || cards[0]["face"] != face || cards[0]["tid"] != "al" ||
		cards[0]["user"] != "alice" || cards[0]["device"] != "phone" {
		t.Errorf("/api/v1/cards = %v", cards)
	}

	// The next location brings the device back online.
	publish(t, c, "owntracks/alice/phone", 1, true, location(52.6, 13.5, now, "ap"))
	eventually(t, "status online in /api/0/last", func() bool {
		last := s.lastOf("alice", "alice-pass-1", "")
		return len(last) == 1 && last[0]["status"] == "online" && last[0]["lat"] == 52.6
	})
	var devices []map[string]any
	s.getJSON("alice", "alice-pass-1", "/api/v1/devices", &devices)
	if len(devices) != 1 || devices[0]["online"] != true || devices[0]["name"] != "Alice" {
		t.Errorf("/api/v1/devices = %v", devices)
	}

	// /ws/last frames carry the same members.
	hdr := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-pass-1"))}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/last", hdr)
	if err != nil {
		t.Fatalf("dial /ws/last: %v (%v)", err, resp)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte("LAST"))
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, frame, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read /ws/last: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(frame, &m); err != nil || m["name"] != "Alice" || m["face"] != face || m["status"] != "online" {
		t.Errorf("/ws/last frame %.200s: %v", frame, err)
	}
}

// TestCardOnInfo: the apps other than iOS publish the card on .../info.
func TestCardOnInfo(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("bob", "bob-pass-12")
	c := mustMQTT(t, "tcp://"+s.MQTT, "types-info-bob", "bob", "bob-pass-12")
	publish(t, c, "owntracks/bob/tab", 1, false, location(48.1, 11.5, time.Now().Unix(), "bt"))
	publish(t, c, "owntracks/bob/tab/info", 1, true, `{"_type":"card","name":"Bob"}`)
	eventually(t, "name from the card on /info", func() bool {
		last := s.lastOf("bob", "bob-pass-12", "")
		return len(last) == 1 && last[0]["name"] == "Bob" && last[0]["status"] == "online"
	})
	if last := s.lastOf("bob", "bob-pass-12", ""); last[0]["face"] != nil {
		t.Errorf("face = %v, want none (the card has none)", last[0]["face"])
	}
	var cards []map[string]any
	s.getJSON("bob", "bob-pass-12", "/api/v1/cards", &cards)
	if len(cards) != 1 || cards[0]["name"] != "Bob" || cards[0]["tid"] != "bt" {
		t.Errorf("/api/v1/cards = %v, want Bob with the location's tid", cards)
	}
}

// TestWaypointsAndUpdate: a waypoints set, then single waypoints that
// replace a region (same tst) or add one.
func TestWaypointsAndUpdate(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("carol", "carol-pass-1")
	c := mustMQTT(t, "tcp://"+s.MQTT, "types-wp-carol", "carol", "carol-pass-1")
	publish(t, c, "owntracks/carol/phone/waypoints", 1, false, `{"_type":"waypoints","waypoints":[`+
		`{"_type":"waypoint","desc":"Home","lat":52.5,"lon":13.4,"rad":50,"tst":1600000000},`+
		`{"_type":"waypoint","desc":"Work","lat":52.52,"lon":13.41,"rad":100,"tst":1600000100}]}`)
	regions := func() []map[string]any {
		var w []map[string]any
		s.getJSON("carol", "carol-pass-1", "/api/v1/waypoints?user=carol&device=phone", &w)
		return w
	}
	eventually(t, "two regions", func() bool { return len(regions()) == 2 })

	publish(t, c, "owntracks/carol/phone/waypoint", 1, false,
		`{"_type":"waypoint","desc":"Home","lat":52.5,"lon":13.4,"rad":75,"tst":1600000000}`)
	publish(t, c, "owntracks/carol/phone/waypoint", 1, false,
		`{"_type":"waypoint","desc":"Gym","lat":52.49,"lon":13.39,"rad":30,"tst":1600000200}`)
	eventually(t, "three regions", func() bool { return len(regions()) == 3 })
	w := regions()
	if w[0]["desc"] != "Home" || w[0]["rad"] != 75.0 || w[1]["desc"] != "Work" || w[2]["desc"] != "Gym" {
		t.Errorf("regions = %v, want Home (rad 75), Work, Gym", w)
	}
	// user defaults to the caller.
	var mine []map[string]any
	s.getJSON("carol", "carol-pass-1", "/api/v1/waypoints?device=phone", &mine)
	if len(mine) != 3 {
		t.Errorf("/api/v1/waypoints?device=phone has %d regions, want 3", len(mine))
	}
	var dev struct{ Waypoints []map[string]any }
	s.getJSON("carol", "carol-pass-1", "/api/v1/devices/carol/phone", &dev)
	if len(dev.Waypoints) != 3 {
		t.Errorf("/api/v1/devices/carol/phone has %d waypoints, want 3", len(dev.Waypoints))
	}
	if code, body := s.get("carol", "carol-pass-1", "/api/v1/waypoints"); code != http.StatusBadRequest {
		t.Errorf("/api/v1/waypoints without device = %d %s, want 400", code, body)
	}
}

// TestMessageTypesVisibility: another user sees none of it; an admin sees
// everything.
func TestMessageTypesVisibility(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("dora", "dora-pass-12")
	s.addUser("eve", "eve-pass-123")
	c := mustMQTT(t, "tcp://"+s.MQTT, "types-vis-dora", "dora", "dora-pass-12")
	publish(t, c, "owntracks/dora/phone", 1, true, `{"_type":"card","name":"Dora","tid":"do"}`)
	publish(t, c, "owntracks/dora/phone/waypoint", 1, false, `{"_type":"waypoint","desc":"Home","lat":1,"lon":2,"rad":50,"tst":1600000000}`)
	publish(t, c, "owntracks/dora/phone", 1, true, location(1, 2, time.Now().Unix(), "do"))
	eventually(t, "dora's device", func() bool {
		var d []map[string]any
		s.getJSON("dora", "dora-pass-12", "/api/v1/devices", &d)
		return len(d) == 1 && d[0]["tid"] == "do"
	})

	for _, path := range []string{"/api/v1/devices", "/api/v1/cards", "/api/0/last", "/api/0/last?user=dora"} {
		var list []any
		s.getJSON("eve", "eve-pass-123", path, &list)
		if list == nil || len(list) != 0 {
			t.Errorf("eve: %s = %v, want []", path, list)
		}
	}
	for path, want := range map[string]int{
		"/api/v1/devices/dora/phone":               http.StatusNotFound, // not visible: as if absent
		"/api/v1/devices/dora/nothing":             http.StatusNotFound,
		"/api/v1/waypoints?user=dora&device=phone": http.StatusForbidden,
	} {
		code, body := s.get("eve", "eve-pass-123", path)
		var e struct{ Code string }
		if code != want || json.Unmarshal(body, &e) != nil || e.Code == "" {
			t.Errorf("eve: %s = %d %s, want %d with a JSON error", path, code, body, want)
		}
	}
	if code, _ := s.get("dora", "dora-pass-12", "/api/v1/devices/dora/nothing"); code != http.StatusNotFound {
		t.Errorf("dora: unknown device = %d, want 404", code)
	}
	if code, _ := s.get("", "", "/api/v1/devices"); code != http.StatusUnauthorized {
		t.Errorf("/api/v1/devices without login = %d, want 401", code)
	}

	var all []map[string]any
	s.getJSON("admin", adminPassword, "/api/v1/devices", &all)
	if len(all) != 1 || all[0]["user"] != "dora" || all[0]["name"] != "Dora" {
		t.Errorf("admin: /api/v1/devices = %v", all)
	}
	var w []any
	s.getJSON("admin", adminPassword, "/api/v1/waypoints?user=dora&device=phone", &w)
	if len(w) != 1 {
		t.Errorf("admin: dora's regions = %v, want one", w)
	}
}

// TestMessageTypesShares: device states follow shares of single devices,
// and regions (exact places) are not shown under a coarsening share.
func TestMessageTypesShares(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("gina", "gina-pass-12")
	s.addUser("hank", "hank-pass-12")
	s.addUser("ivan", "ivan-pass-12")
	c := mustMQTT(t, "tcp://"+s.MQTT, "types-share-gina", "gina", "gina-pass-12")
	for _, dev := range []string{"phone", "tab"} {
		publish(t, c, "owntracks/gina/"+dev+"/info", 1, true, `{"_type":"card","name":"Gina `+dev+`","tid":"g`+dev[:1]+`"}`)
		publish(t, c, "owntracks/gina/"+dev+"/waypoint", 1, false, `{"_type":"waypoint","desc":"Home","lat":52.5,"lon":13.4,"rad":50,"tst":1600000000}`)
	}
	eventually(t, "gina's two devices", func() bool {
		var d []any
		s.getJSON("gina", "gina-pass-12", "/api/v1/devices", &d)
		return len(d) == 2
	})
	share := func(body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url("/api/v1/shares"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("gina", "gina-pass-12")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST /api/v1/shares: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /api/v1/shares %s: status %d", body, resp.StatusCode)
		}
	}
	share(`{"viewer":"hank","device":"phone","precision":1000}`)
	share(`{"viewer":"ivan"}`)

	var devices, cards []map[string]any
	s.getJSON("hank", "hank-pass-12", "/api/v1/devices", &devices)
	s.getJSON("hank", "hank-pass-12", "/api/v1/cards", &cards)
	if len(devices) != 1 || devices[0]["device"] != "phone" || len(cards) != 1 || cards[0]["name"] != "Gina phone" {
		t.Errorf("hank (phone only): devices = %v, cards = %v", devices, cards)
	}
	if code, _ := s.get("hank", "hank-pass-12", "/api/v1/devices/gina/tab"); code != http.StatusNotFound {
		t.Errorf("hank: gina/tab = %d, want 404", code)
	}
	var dev struct{ Waypoints []any }
	s.getJSON("hank", "hank-pass-12", "/api/v1/devices/gina/phone", &dev)
	if dev.Waypoints == nil || len(dev.Waypoints) != 0 {
		t.Errorf("hank (coarse): gina/phone waypoints = %v, want []", dev.Waypoints)
	}
	if code, _ := s.get("hank", "hank-pass-12", "/api/v1/waypoints?user=gina&device=phone"); code != http.StatusForbidden {
		t.Errorf("hank (coarse): /api/v1/waypoints = %d, want 403", code)
	}

	s.getJSON("ivan", "ivan-pass-12", "/api/v1/devices", &devices)
	if len(devices) != 2 {
		t.Errorf("ivan (all, exact): devices = %v, want both", devices)
	}
	var w []any
	s.getJSON("ivan", "ivan-pass-12", "/api/v1/waypoints?user=gina&device=tab", &w)
	if len(w) != 1 {
		t.Errorf("ivan (exact): regions = %v, want one", w)
	}
}

// TestLWTWill: a real Last Will, sent by the embedded broker when the
// client vanishes without DISCONNECT (Android: QoS 0, no tst), turns the
// device offline. Needs the broker/hook.go OnWillSent patch.
func TestLWTWill(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("fred", "fred-pass-12")
	var mu sync.Mutex
	var conn net.Conn
	opts := paho.NewClientOptions().AddBroker("tcp://"+s.MQTT).SetClientID("types-will-fred").
		SetUsername("fred").SetPassword("fred-pass-12").SetAutoReconnect(false).
		SetWill("owntracks/fred/phone", `{"_type":"lwt"}`, 0, false).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			mu.Lock()
			conn = c
			mu.Unlock()
			return c, err
		})
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	publish(t, c, "owntracks/fred/phone", 1, true, location(1, 2, time.Now().Unix(), "fr"))
	mu.Lock()
	conn.Close() // no DISCONNECT: the broker sends the Will
	mu.Unlock()
	eventually(t, "offline after the Will", func() bool {
		last := s.lastOf("fred", "fred-pass-12", "")
		return len(last) == 1 && last[0]["status"] == "offline"
	})
}

// A Will on someone else's topic would be published as theirs: refused.
func TestWillTopicChecked(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("gus", "gus-pass-123")
	opts := paho.NewClientOptions().AddBroker("tcp://"+s.MQTT).SetClientID("types-will-gus").
		SetUsername("gus").SetPassword("gus-pass-123").SetAutoReconnect(false).
		SetWill("owntracks/admin/phone", `{"_type":"lwt"}`, 0, false)
	c := paho.NewClient(opts)
	if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		c.Disconnect(50)
		t.Fatal("connected with a Will on another user's topic")
	}
}
