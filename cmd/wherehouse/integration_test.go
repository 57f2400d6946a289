package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
)

func TestEmptyStore(t *testing.T) {
	s := startServer(t, t.TempDir())
	var last []any
	s.getJSON("admin", adminPassword, "/api/0/last", &last)
	if last == nil || len(last) != 0 {
		t.Errorf("/api/0/last on an empty store = %v, want []", last)
	}
	var list struct{ Results []string }
	s.getJSON("admin", adminPassword, "/api/0/list?user=nobody", &list)
	if list.Results == nil || len(list.Results) != 0 {
		t.Errorf("/api/0/list?user=nobody = %v, want []", list.Results)
	}
	// A user with no data is listed, with no devices.
	s.getJSON("admin", adminPassword, "/api/0/list", &list)
	if strings.Join(list.Results, ",") != "admin" {
		t.Errorf("/api/0/list = %v, want [admin]", list.Results)
	}
	r := s.locations("admin", adminPassword, "admin", "phone")
	if r.Count != 0 || r.Data == nil || len(r.Data) != 0 {
		t.Errorf("locations on empty store = %+v, want count 0 and data []", r)
	}
	code, body := s.get("", "", "/api/0/version")
	if code != http.StatusOK || !strings.Contains(string(body), `"version"`) {
		t.Errorf("/api/0/version without login = %d %s", code, body)
	}
	if code, _ := s.get("", "", "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
}

func TestPublishAndQuery(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-1")
	c := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-1")
	base := time.Now().Add(-time.Hour).Unix()
	// Out of order on purpose: history is ordered by tst, not arrival.
	publish(t, c, "owntracks/alice/phone", 1, true, location(52.1, 13.1, base+20, "ap"))
	publish(t, c, "owntracks/alice/phone", 1, true, location(52.0, 13.0, base, "ap"))
	publish(t, c, "owntracks/Alice/Phone", 0, false, location(52.2, 13.2, base+40, "ap"))
	publish(t, c, "owntracks/alice/phone/event", 1, false,
		fmt.Sprintf(`{"_type":"transition","event":"enter","desc":"Home","lat":52,"lon":13,"tst":%d,"wtst":1,"acc":5,"tid":"ap","t":"c"}`, base+30))

	// mosquitto_pub, QoS 0 and 1.
	pub := needTool(t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := strings.Cut(s.MQTT, ":")
	for i, qos := range []string{"0", "1"} {
		out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "alice", "-P", "alice-pass-1", "-q", qos,
			"-i", "alice-cli-"+qos, "-t", "owntracks/alice/tablet", "-m", location(48.1, 11.5, base+int64(i), "at")).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub -q %s: %v %s", qos, err, out)
		}
	}

	eventually(t, "three phone locations", func() bool {
		return s.locations("alice", "alice-pass-1", "alice", "phone").Count == 3
	})
	r := s.locations("alice", "alice-pass-1", "alice", "phone")
	for i, want := range []float64{52.0, 52.1, 52.2} {
		if r.Data[i]["lat"] != want {
			t.Errorf("point %d lat = %v, want %v (ordered by tst)", i, r.Data[i]["lat"], want)
		}
		for _, k := range []string{"isotst", "disptst", "tid"} {
			if _, ok := r.Data[i][k]; !ok {
				t.Errorf("point %d has no %s: %v", i, k, r.Data[i])
			}
		}
	}
	eventually(t, "two tablet locations", func() bool {
		return s.locations("alice", "alice-pass-1", "alice", "tablet").Count == 2
	})

	var last []map[string]any
	s.getJSON("alice", "alice-pass-1", "/api/0/last", &last)
	if len(last) != 2 {
		t.Fatalf("/api/0/last = %d entries, want 2 (phone, tablet): %v", len(last), last)
	}
	if last[0]["device"] != "phone" || last[0]["lat"] != 52.2 || last[0]["username"] != "alice" || last[0]["topic"] != "owntracks/Alice/Phone" {
		t.Errorf("last phone = %v, want the newest fix with username, device and topic", last[0])
	}
	var limited []map[string]any
	s.getJSON("alice", "alice-pass-1", "/api/0/last?user=alice&device=tablet&fields=lat,lon,tst", &limited)
	if len(limited) != 1 || len(limited[0]) != 3 || limited[0]["lat"] != 48.1 {
		t.Errorf("last with fields = %v, want the tablet with only lat, lon, tst", limited)
	}
	var list struct{ Results []string }
	s.getJSON("alice", "alice-pass-1", "/api/0/list?user=alice", &list)
	if strings.Join(list.Results, ",") != "phone,tablet" {
		t.Errorf("devices = %v", list.Results)
	}
	// Parameters as X-Limit headers and date ranges.
	req, _ := http.NewRequest("GET", s.url("/api/0/locations?from=2000-01-01&to=2100-01-01&limit=1"), nil)
	req.SetBasicAuth("alice", "alice-pass-1")
	req.Header.Set("X-Limit-User", "alice")
	req.Header.Set("X-Limit-Device", "phone")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lr locationsResponse
	json.NewDecoder(resp.Body).Decode(&lr)
	resp.Body.Close()
	if lr.Count != 1 || lr.Data[0]["lat"] != 52.2 {
		t.Errorf("limit=1 via X-Limit headers = %+v, want the newest point", lr)
	}
	var fc struct {
		Type     string
		Features []struct {
			Geometry struct{ Coordinates []float64 }
		}
	}
	s.getJSON("alice", "alice-pass-1", "/api/0/locations?user=alice&device=phone&from=2000-01-01&to=2100-01-01&format=geojson", &fc)
	if fc.Type != "FeatureCollection" || len(fc.Features) != 3 || fc.Features[0].Geometry.Coordinates[0] != 13.0 {
		t.Errorf("geojson = %+v", fc)
	}
	if code, body := s.get("alice", "alice-pass-1", "/api/0/locations?user=alice&device=phone&format=kmz"); code != http.StatusBadRequest {
		t.Errorf("unknown format = %d %s, want 400", code, body)
	}
}

func TestBadMessagesAreDroppedAndTheStreamFlows(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("bob", "bob-pass-12")
	c := mustMQTT(t, "tcp://"+s.MQTT, "bob-phone", "bob", "bob-pass-12")
	now := time.Now().Unix()
	for _, bad := range []string{
		`not json`,
		`{"_type":"location","lat":"52","lon":13,"tst":1}`,
		`{"_type":"location","lat":52,"lon":13}`,
		`{"_type":"location","lat":52,"lon":13,"tst":1}garbage`,
		`{"_type":"location","_type":"card","lat":52,"lon":13,"tst":1}`,
		"{\"_type\":\"location\",\"lat\":52,\"lon\":13,\"tst\":1,\"tid\":\"\xff\"}",
	} {
		publish(t, c, "owntracks/bob/phone", 1, false, bad) // acknowledged anyway
	}
	publish(t, c, "owntracks/bob/phone", 1, false, location(1, 2, now, "bp"))
	publish(t, c, "owntracks/bob/phone", 1, false, location(1, 2, now, "bp")) // duplicate
	eventually(t, "the good message", func() bool {
		return s.locations("bob", "bob-pass-12", "bob", "phone").Count == 1
	})
	code, body := s.get("admin", adminPassword, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`wherehouse_messages_rejected_total{reason="json"} 4`,
		`wherehouse_messages_rejected_total{reason="field"} 2`,
		`wherehouse_messages_duplicate_total 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(s.err.String(), "message rejected") {
		t.Error("rejections are not logged")
	}
	if code, _ := s.get("bob", "bob-pass-12", "/metrics"); code != http.StatusForbidden {
		t.Errorf("/metrics for a non-admin = %d, want 403", code)
	}
}

func TestDenials(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-1")
	s.addUser("bob", "bob-pass-12")
	mq := "tcp://" + s.MQTT

	for _, tc := range []struct{ name, user, password string }{
		{"anonymous", "", ""},
		{"wrong password", "alice", "nope-nope-nope"},
		{"unknown user", "mallory", "whatever-123"},
	} {
		t.Run("mqtt "+tc.name, func(t *testing.T) {
			if _, err := mqttClient(t, mq, "x-"+tc.user, tc.user, tc.password); err == nil {
				t.Fatal("connected, want refused")
			}
		})
	}
	for _, tc := range []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", "alice", "nope-nope-nope"},
	} {
		t.Run("http "+tc.name, func(t *testing.T) {
			for _, p := range []string{"/api/0/last", "/api/0/list", "/api/0/locations?user=alice&device=phone", "/ws/last", "/metrics"} {
				code, body := s.get(tc.user, tc.password, p)
				if code != http.StatusUnauthorized || !json.Valid(body) {
					t.Errorf("%s = %d %s, want a JSON 401", p, code, body)
				}
			}
		})
	}

	alice := mustMQTT(t, mq, "alice-phone", "alice", "alice-pass-1")
	bob := mustMQTT(t, mq, "bob-phone", "bob", "bob-pass-12")
	now := time.Now().Unix()

	// Subscribing to another user's device is refused; a wildcard is
	// allowed but only delivers what alice may read.
	tok := alice.Subscribe("owntracks/bob/phone", 1, nil)
	tok.Wait()
	if st, ok := tok.(*paho.SubscribeToken); ok && st.Result()["owntracks/bob/phone"] != 0x80 {
		t.Errorf("subscribe to bob's device: result %v, want 0x80 (refused)", st.Result())
	}
	var got atomic.Value
	got.Store("")
	alice.Subscribe("owntracks/+/+", 1, func(_ paho.Client, m paho.Message) { got.Store(got.Load().(string) + m.Topic() + ";") }).Wait()
	publish(t, bob, "owntracks/bob/phone", 1, false, location(10, 10, now, "bp"))
	publish(t, alice, "owntracks/alice/phone", 1, false, location(20, 20, now, "ap"))
	eventually(t, "alice's own message delivered", func() bool { return strings.Contains(got.Load().(string), "owntracks/alice/phone") })
	if strings.Contains(got.Load().(string), "bob") {
		t.Errorf("alice received bob's message: %s", got.Load())
	}

	// Publishing into another user's tree: QoS 0 is dropped, QoS 1 gets
	// the client disconnected; neither is stored.
	publish(t, alice, "owntracks/bob/phone", 0, false, location(66, 66, now+1, "xx"))
	alice.Publish("owntracks/bob/phone", 1, false, location(67, 67, now+2, "xx")).WaitTimeout(3 * time.Second)
	eventually(t, "alice disconnected", func() bool { return !alice.IsConnectionOpen() })

	r := s.locations("bob", "bob-pass-12", "bob", "phone")
	if r.Count != 1 || r.Data[0]["lat"] != 10.0 {
		t.Errorf("bob's phone = %+v, want only bob's own point", r)
	}
	// HTTP: alice cannot read bob: no points (as for a device without
	// data, like the Recorder), and 403 for a download.
	if r := s.locations("alice", "alice-pass-1", "bob", "phone"); r.Count != 0 || len(r.Data) != 0 {
		t.Errorf("alice reading bob's locations: %+v, want none", r)
	}
	if code, _ := s.get("alice", "alice-pass-1", "/api/0/locations?user=bob&device=phone&format=csv"); code != http.StatusForbidden {
		t.Errorf("alice downloading bob's locations = %d, want 403", code)
	}
	var last []map[string]any
	s.getJSON("alice", "alice-pass-1", "/api/0/last", &last)
	for _, l := range last {
		if l["username"] != "alice" {
			t.Errorf("alice sees %v in /last", l["username"])
		}
	}
	var bobs []map[string]any
	s.getJSON("alice", "alice-pass-1", "/api/0/last?user=bob", &bobs)
	if bobs == nil || len(bobs) != 0 {
		t.Errorf("alice /last?user=bob = %v, want []", bobs)
	}
	var list struct{ Results []string }
	s.getJSON("alice", "alice-pass-1", "/api/0/list", &list)
	if strings.Join(list.Results, ",") != "alice" {
		t.Errorf("alice's /list = %v, want [alice]", list.Results)
	}
	s.getJSON("alice", "alice-pass-1", "/api/0/list?user=bob", &list)
	if len(list.Results) != 0 {
		t.Errorf("alice's /list?user=bob = %v, want []", list.Results)
	}
	// The admin sees everyone.
	var all []map[string]any
	s.getJSON("admin", adminPassword, "/api/0/last", &all)
	if len(all) != 2 {
		t.Errorf("admin /last = %d entries, want 2", len(all))
	}
}

func TestWebSocketLast(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("carol", "carol-pass-1")
	s.addUser("dave", "dave-pass-12")
	c := mustMQTT(t, "tcp://"+s.MQTT, "carol-phone", "carol", "carol-pass-1")
	d := mustMQTT(t, "tcp://"+s.MQTT, "dave-phone", "dave", "dave-pass-12")
	now := time.Now().Unix()
	publish(t, c, "owntracks/carol/phone", 1, false, location(1, 1, now, "cp"))

	hdr := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("carol:carol-pass-1"))}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/last", hdr)
	if err != nil {
		t.Fatalf("dial /ws/last: %v (%v)", err, resp)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte("LAST"))
	read := func() map[string]any {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read /ws/last: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("frame %s: %v", msg, err)
		}
		return m
	}
	if m := read(); m["_type"] != "location" || m["lat"] != 1.0 || m["username"] != "carol" {
		t.Errorf("LAST frame = %v", m)
	}
	// dave's location must not reach carol; her own next one must.
	publish(t, d, "owntracks/dave/phone", 1, false, location(5, 5, now, "dp"))
	publish(t, c, "owntracks/carol/phone", 1, false, location(2, 2, now+1, "cp"))
	if m := read(); m["lat"] != 2.0 || m["username"] != "carol" {
		t.Errorf("pushed frame = %v, want carol's new location", m)
	}

	// Without credentials the upgrade is refused.
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/last", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated /ws/last: err=%v resp=%v, want 401", err, resp)
	}
	// A cross-site page is refused even with credentials.
	hdr.Set("Origin", "http://evil.example")
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/last", hdr); err == nil {
		t.Errorf("cross-origin /ws/last accepted (%v)", resp.Status)
	}
}

func TestMQTTOverWebSocket(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("erin", "erin-pass-12")
	c := mustMQTT(t, "ws://"+s.HTTP+"/mqtt", "erin-browser", "erin", "erin-pass-12")
	publish(t, c, "owntracks/erin/laptop", 1, false, location(3, 3, time.Now().Unix(), "el"))
	eventually(t, "location over websocket", func() bool {
		return s.locations("erin", "erin-pass-12", "erin", "laptop").Count == 1
	})
	if _, err := mqttClient(t, "ws://"+s.HTTP+"/mqtt", "erin-2", "erin", "wrong-password"); err == nil {
		t.Error("wrong password accepted over websocket")
	}
}
