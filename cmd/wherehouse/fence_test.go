package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wherehouse/wherehouse/webhook"
)

// Home is the fence the walk-home track (fixtures/tracks) walks into and
// out of: one enter and one leave.
const homeFence = `{"type":"Feature","geometry":{"type":"Point","coordinates":[13.424,52.538]},"properties":{"name":"Home","radius":100}}`

// track reads a fixture track and moves it so its last fix is at end.
func track(t *testing.T, name string, end int64) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "fixtures", "tracks", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fixes []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fixes = append(fixes, m)
	}
	last := int64(fixes[len(fixes)-1]["tst"].(float64))
	out := make([]string, len(fixes))
	for i, m := range fixes {
		m["tst"] = end - (last - int64(m["tst"].(float64)))
		b, _ := json.Marshal(m)
		out[i] = string(b)
	}
	return out
}

// hookReceiver is a webhook endpoint that fails its first failures
// requests with 500 and records the events it accepted, by ID.
type hookReceiver struct {
	*httptest.Server
	secret   string
	mu       sync.Mutex
	failures int
	requests int
	badSig   int
	events   map[string]map[string]any
}

func newHookReceiver(t *testing.T, secret string, failures int) *hookReceiver {
	h := &hookReceiver{secret: secret, failures: failures, events: map[string]map[string]any{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests++
		if !webhook.Verify(h.secret, body, r.Header.Get(webhook.SignatureHeader)) {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if h.requests <= h.failures {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		h.events[ev["id"].(string)] = ev
	}))
	t.Cleanup(h.Close)
	return h
}

// kinds returns the accepted events' "event" fields in tst order.
func (h *hookReceiver) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return eventKinds(h.events)
}

func eventKinds(evs map[string]map[string]any) []string {
	var list []map[string]any
	for _, ev := range evs {
		list = append(list, ev)
	}
	for i := range list { // few: insertion sort by tst
		for j := i; j > 0 && list[j]["tst"].(float64) < list[j-1]["tst"].(float64); j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
	out := []string{}
	for _, ev := range list {
		out = append(out, fmt.Sprint(ev["event"]))
	}
	return out
}

func basicAuth(user, password string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}
}

// apiEvents returns the kinds of alice's events in the API, checking they
// were all evaluated by the server (a re-ingested server transition would
// show up as a device event).
func apiEvents(t *testing.T, s *testServer, user, password, query string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	s.getJSON(user, password, "/api/v1/events?"+query, &evs)
	return evs
}

func kindsOf(evs []map[string]any) string {
	var k []string
	for _, ev := range evs {
		k = append(k, fmt.Sprintf("%v/%v", ev["event"], ev["source"]))
	}
	return strings.Join(k, ",")
}

func TestFenceEvents(t *testing.T) {
	sub := needTool(t, "mosquitto_sub", "mosquitto-clients")
	s := startServer(t, t.TempDir())
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		s.addUser(u, u+"-pass-123")
	}
	runCLI(t, "", "share", "alice", "bob", "--data", s.dir)
	runCLI(t, "", "share", "alice", "carol", "--precision", "1000", "--data", s.dir)

	hook := newHookReceiver(t, "hook-secret", 1) // fails once, then takes everything
	if code, body := s.send("POST", "alice", "alice-pass-123", "/api/v1/webhooks",
		fmt.Sprintf(`{"url":%q,"secret":"hook-secret"}`, hook.URL)); code != http.StatusCreated {
		t.Fatalf("add webhook: %d %s", code, body)
	}
	code, body := s.send("POST", "alice", "alice-pass-123", "/api/v1/fences", homeFence)
	if code != http.StatusCreated {
		t.Fatalf("add fence: %d %s", code, body)
	}
	var fence struct{ ID string }
	json.Unmarshal(body, &fence)

	// Bob (exact share) watches alice's events with mosquitto_sub, the
	// way a friend's app or Home Assistant does.
	host, port, _ := strings.Cut(s.MQTT, ":")
	var subOut bytes.Buffer
	mosq := exec.Command(sub, "-h", host, "-p", port, "-u", "bob", "-P", "bob-pass-123", "-i", "bob-sub",
		"-t", "owntracks/+/+/event", "-t", "wherehouse/events/#", "-v", "-C", "4", "-W", "60")
	mosq.Stdout = &subOut
	mosq.Stderr = &subOut
	if err := mosq.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mosq.Process.Kill(); mosq.Wait() })
	// Carol (a 1 km share) and dave (nothing shared) must get nothing.
	var carolBox, daveBox inbox
	subscribe(t, mustMQTT(t, "tcp://"+s.MQTT, "carol-sub", "carol", "carol-pass-123"), "owntracks/+/+/event", &carolBox)
	subscribe(t, mustMQTT(t, "tcp://"+s.MQTT, "carol-sub2", "carol", "carol-pass-123"), "wherehouse/events/#", &carolBox)
	dave := mustMQTT(t, "tcp://"+s.MQTT, "dave-sub", "dave", "dave-pass-123")
	subscribe(t, dave, "owntracks/#", &daveBox)
	subscribe(t, dave, "wherehouse/#", &daveBox)
	// Bob's websocket.
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/events", basicAuth("bob", "bob-pass-123"))
	if err != nil {
		t.Fatalf("dial /ws/events: %v (%v)", err, resp)
	}
	defer ws.Close()
	daveWS, _, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/events", basicAuth("dave", "dave-pass-123"))
	if err != nil {
		t.Fatal(err)
	}
	defer daveWS.Close()
	eventually(t, "mosquitto_sub connected", func() bool { return strings.Contains(s.err.String(), "client=bob-sub") })

	alice := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	for _, p := range track(t, "walk-home.jsonl", time.Now().Unix()) {
		publish(t, alice, "owntracks/alice/phone", 1, false, p)
	}

	// The websocket: one enter, one leave.
	var wsKinds []string
	for range 2 {
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read /ws/events: %v (got %v)", err, wsKinds)
		}
		var ev map[string]any
		json.Unmarshal(msg, &ev)
		if ev["fence"] != fence.ID || ev["desc"] != "Home" || ev["user"] != "alice" || ev["source"] != "server" {
			t.Errorf("ws event %s", msg)
		}
		wsKinds = append(wsKinds, fmt.Sprint(ev["event"]))
	}
	if strings.Join(wsKinds, ",") != "enter,leave" {
		t.Errorf("ws events %v, want enter,leave", wsKinds)
	}
	// MQTT: the OwnTracks transition and the JSON event, each once.
	if err := mosq.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s", err, subOut.String())
	}
	lines := strings.Split(strings.TrimSpace(subOut.String()), "\n")
	var transitions, jsonEvents []string
	for _, l := range lines {
		topic, payload, _ := strings.Cut(l, " ")
		var m map[string]any
		json.Unmarshal([]byte(payload), &m)
		switch topic {
		case "owntracks/alice/phone/event":
			if m["_type"] != "transition" || m["desc"] != "Home" || m["t"] != "c" {
				t.Errorf("transition %s", payload)
			}
			transitions = append(transitions, fmt.Sprint(m["event"]))
		case "wherehouse/events/alice/phone":
			jsonEvents = append(jsonEvents, fmt.Sprint(m["event"]))
		default:
			t.Errorf("unexpected %s", l)
		}
	}
	if strings.Join(transitions, ",") != "enter,leave" || strings.Join(jsonEvents, ",") != "enter,leave" {
		t.Errorf("mqtt transitions %v, json events %v; want enter,leave each:\n%s", transitions, jsonEvents, subOut.String())
	}
	// The webhook, after one failed attempt and a retry.
	eventually(t, "webhook got enter and leave", func() bool { return strings.Join(hook.kinds(), ",") == "enter,leave" })
	hook.mu.Lock()
	if hook.badSig > 0 {
		t.Errorf("%d webhook requests had a bad signature", hook.badSig)
	}
	hook.mu.Unlock()
	// Stored: exactly the two server events (the transition published on
	// MQTT was not taken back in as a device message).
	if got := kindsOf(apiEvents(t, s, "alice", "alice-pass-123", "")); got != "enter/server,leave/server" {
		t.Errorf("alice's events %s", got)
	}
	if got := kindsOf(apiEvents(t, s, "bob", "bob-pass-123", "user=alice")); got != "enter/server,leave/server" {
		t.Errorf("bob's view of alice's events %s", got)
	}
	// Denials: carol's share is coarse, dave has none.
	for _, who := range []string{"carol", "dave"} {
		if code, _ := s.get(who, who+"-pass-123", "/api/v1/events?user=alice"); code != http.StatusForbidden && who == "dave" {
			t.Errorf("dave reading alice's events: %d", code)
		}
	}
	if got := kindsOf(apiEvents(t, s, "carol", "carol-pass-123", "user=alice")); got != "" {
		t.Errorf("carol (coarse share) sees events %s", got)
	}
	if n := len(carolBox.find("owntracks/alice/phone/event")) + len(carolBox.find("wherehouse/events/alice/phone")); n != 0 {
		t.Errorf("carol (coarse share) got %d events on MQTT", n)
	}
	if n := len(daveBox.find("owntracks/alice/phone/event")) + len(daveBox.find("wherehouse/events/alice/phone")); n != 0 {
		t.Errorf("dave got %d of alice's events on MQTT", n)
	}
	daveWS.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, msg, err := daveWS.ReadMessage(); err == nil {
		t.Errorf("dave's websocket got %s", msg)
	}
	if code, _ := s.get("dave", "dave-pass-123", "/api/v1/fences/"+fence.ID); code != http.StatusNotFound {
		t.Errorf("dave reading alice's fence: %d", code)
	}

	// Who is where, and for how long.
	var occ []map[string]any
	s.getJSON("alice", "alice-pass-123", "/api/v1/fences/"+fence.ID+"/occupants", &occ)
	if len(occ) != 0 {
		t.Errorf("occupants after leaving: %v", occ)
	}
	var days []map[string]any
	s.getJSON("alice", "alice-pass-123", "/api/v1/fences/"+fence.ID+"/time", &days)
	if len(days) == 0 || days[0]["seconds"].(float64) <= 0 {
		t.Errorf("time inside: %v", days)
	}

	// Bob's app in HTTP mode gets alice's transitions in its first reply,
	// keyed like her location, and not again in the next one. Carol (a
	// coarse share) gets none.
	pub := func(user string) []map[string]any {
		return s.pubOK(pubRequest{user: user, password: user + "-pass-123", u: user, d: "phone", agent: "Owntracks-Android/2.5",
			body: location(48.1, 11.5, time.Now().Unix(), "xx")})
	}
	first := ofType(pub("bob"), "transition")
	if len(first) != 2 || first[0]["desc"] != "Home" || first[0]["tid"] == nil || first[0]["topic"] != "owntracks/alice/phone" {
		t.Errorf("bob's first HTTP reply has transitions %v", first)
	}
	if again := ofType(pub("bob"), "transition"); len(again) != 0 {
		t.Errorf("bob's second HTTP reply repeats transitions %v", again)
	}
	if got := ofType(pub("carol"), "transition"); len(got) != 0 {
		t.Errorf("carol (coarse share) gets transitions over HTTP: %v", got)
	}

	// The app's own transition is stored and forwarded, marked as such.
	publish(t, alice, "owntracks/alice/phone/event", 1, false,
		fmt.Sprintf(`{"_type":"transition","event":"enter","desc":"Office","t":"c","tst":%d,"wtst":1,"lat":52.5,"lon":13.4,"acc":10,"tid":"ap","rid":"office"}`, time.Now().Unix()))
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"source":"device"`) || !strings.Contains(string(msg), `"desc":"Office"`) {
		t.Errorf("device transition on ws: %s %v", msg, err)
	}
	eventually(t, "webhook got the device's transition", func() bool { return len(hook.kinds()) == 3 })
}

func TestFenceEventsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-123")
	// The receiver is down (fails) for the first two attempts: the enter
	// is still pending in the outbox when the server restarts.
	hook := newHookReceiver(t, "restart-secret", 2)
	runCLI(t, "", "webhook", "add", hook.URL, "--user", "alice", "--secret", "restart-secret", "--data", dir)
	out := runCLI(t, "", "fence", "add", "Home", "--user", "alice", "--circle", "52.538,13.424,100", "--data", dir)
	if !strings.Contains(out, "fence ") {
		t.Fatalf("fence add: %s", out)
	}
	fixes := track(t, "walk-home.jsonl", time.Now().Unix())
	// Find where the track is deepest inside, to restart there.
	mid := len(fixes) / 2
	alice := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	for _, p := range fixes[:mid] {
		publish(t, alice, "owntracks/alice/phone", 1, false, p)
	}
	eventually(t, "enter recorded", func() bool {
		return kindsOf(apiEvents(t, s, "alice", "alice-pass-123", "")) == "enter/server"
	})
	eventually(t, "a failed delivery", func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return hook.requests >= 1
	})
	s.stop()

	s = startServer(t, dir)
	alice = mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	for _, p := range fixes[mid:] {
		publish(t, alice, "owntracks/alice/phone", 1, false, p)
	}
	eventually(t, "leave recorded, no second enter", func() bool {
		return kindsOf(apiEvents(t, s, "alice", "alice-pass-123", "")) == "enter/server,leave/server"
	})
	// The pending enter is delivered after the restart, then the leave.
	eventually(t, "webhook got enter and leave", func() bool { return strings.Join(hook.kinds(), ",") == "enter,leave" })
	var deliveries []map[string]any
	var hooks []map[string]any
	s.getJSON("alice", "alice-pass-123", "/api/v1/webhooks", &hooks)
	if len(hooks) != 1 || hooks[0]["secret"] != nil {
		t.Fatalf("webhooks %v (the secret must not be shown)", hooks)
	}
	// The receiver answers before the server logs the delivery as done.
	delivered := func() int {
		deliveries = nil
		s.getJSON("alice", "alice-pass-123", "/api/v1/webhooks/"+hooks[0]["id"].(string)+"/deliveries", &deliveries)
		n := 0
		for _, d := range deliveries {
			if d["status"] == "delivered" {
				n++
			}
		}
		return n
	}
	eventually(t, "both deliveries logged as delivered", func() bool { return delivered() == 2 })
	if n := delivered(); n != 2 {
		t.Errorf("delivery log: %v", deliveries)
	}
}

// Behind an external broker, the transitions wherehouse publishes come
// back on its owntracks/# subscription; they must not be taken for
// device messages.
func TestFenceEventsExternalBroker(t *testing.T) {
	addr := startMosquitto(t)
	dir := t.TempDir()
	s := startServer(t, dir, "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-client-id", "wh-fences")
	eventually(t, "connected to mosquitto", func() bool { return containsLine(s.err.String(), "msg=subscribed") })
	runCLI(t, "", "fence", "add", "Home", "--user", "alice", "--circle", "52.538,13.424,100", "--data", dir)

	var box inbox
	subscribe(t, mustMQTT(t, "tcp://"+addr, "watcher", "", ""), "owntracks/alice/phone/event", &box)
	pub := mustMQTT(t, "tcp://"+addr, "alice-phone", "", "")
	for _, p := range track(t, "walk-home.jsonl", time.Now().Unix()) {
		publish(t, pub, "owntracks/alice/phone", 1, false, p)
	}
	eventually(t, "enter and leave on the broker", func() bool { return len(box.find("owntracks/alice/phone/event")) == 2 })
	for _, m := range box.find("owntracks/alice/phone/event") {
		if m["_type"] != "transition" || m["source"] != "wherehouse" {
			t.Errorf("published %v", m)
		}
	}
	// A transition the device itself reports, after ours: once it is
	// recorded, anything re-ingested before it would be too.
	publish(t, pub, "owntracks/alice/phone/event", 1, false,
		fmt.Sprintf(`{"_type":"transition","event":"leave","desc":"Office","t":"c","tst":%d,"lat":52.5,"lon":13.4,"acc":10}`, time.Now().Unix()+1))
	eventually(t, "the device's own transition", func() bool {
		return strings.Contains(kindsOf(apiEvents(t, s, "admin", adminPassword, "user=alice")), "/device")
	})
	if got := kindsOf(apiEvents(t, s, "admin", adminPassword, "user=alice")); got != "enter/server,leave/server,leave/device" {
		t.Errorf("events %s: want our two and the device's one (a server transition re-ingested?)", got)
	}
}

func TestFenceManagement(t *testing.T) {
	dir := t.TempDir()
	// Fences can be set up before the server ever runs.
	geojson := filepath.Join(t.TempDir(), "office.geojson")
	os.WriteFile(geojson, []byte(`{"type":"MultiPolygon","coordinates":[[[[13.38,52.51],[13.39,52.51],[13.39,52.52],[13.38,52.51]]]]}`), 0o600)
	if out := runCLI(t, "", "fence", "add", "Office", "--user", "alice", "--geojson", geojson, "--dwell", "2m", "--data", dir); !strings.Contains(out, "fence ") {
		t.Fatalf("fence add: %s", out)
	}
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-123")
	s.addUser("bob", "bob-pass-1234")

	for _, tc := range []struct {
		name, body, want string
	}{
		{"not json", `{`, "not a geojson feature"},
		{"no name", `{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,52.5]},"properties":{"radius":50}}`, "needs a name"},
		{"no radius", `{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,52.5]},"properties":{"name":"x"}}`, "radius"},
		{"open ring", `{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[13.4,52.5],[13.5,52.5],[13.5,52.6]]]},"properties":{"name":"x"}}`, "ring"},
		{"latitude out of range", `{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,95]},"properties":{"name":"x","radius":50}}`, "latitude"},
		{"negative dwell", `{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,52.5]},"properties":{"name":"x","radius":50,"dwell":-1}}`, "dwell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.send("POST", "alice", "alice-pass-123", "/api/v1/fences", tc.body)
			if code != http.StatusBadRequest || !strings.Contains(strings.ToLower(string(body)), tc.want) {
				t.Errorf("%d %s, want 400 mentioning %q", code, body, tc.want)
			}
		})
	}

	poly := `{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[13.40,52.50],[13.41,52.50],[13.41,52.51],[13.40,52.51],[13.40,52.50]]]},"properties":{"name":"Park","leave_after":60}}`
	code, body := s.send("POST", "alice", "alice-pass-123", "/api/v1/fences", poly)
	if code != http.StatusCreated {
		t.Fatalf("add polygon: %d %s", code, body)
	}
	var f struct {
		ID         string
		Properties map[string]any
	}
	json.Unmarshal(body, &f)
	if f.Properties["owner"] != "alice" || f.Properties["leave_after"] != float64(60) {
		t.Errorf("created %s", body)
	}
	// Bob cannot see, change or delete alice's fence, nor make fences for her.
	for _, req := range [][2]string{{"GET", ""}, {"PUT", poly}, {"DELETE", ""}} {
		if code, _ := s.send(req[0], "bob", "bob-pass-1234", "/api/v1/fences/"+f.ID, req[1]); code != http.StatusNotFound {
			t.Errorf("bob %s alice's fence: %d", req[0], code)
		}
	}
	if code, _ := s.send("POST", "bob", "bob-pass-1234", "/api/v1/fences?owner=alice", poly); code != http.StatusForbidden {
		t.Errorf("bob making a fence for alice: %d", code)
	}
	var fc struct{ Features []json.RawMessage }
	s.getJSON("bob", "bob-pass-1234", "/api/v1/fences", &fc)
	if len(fc.Features) != 0 {
		t.Errorf("bob lists %d fences", len(fc.Features))
	}
	s.getJSON("alice", "alice-pass-123", "/api/v1/fences", &fc)
	if len(fc.Features) != 2 {
		t.Errorf("alice lists %d fences, want the office and the park", len(fc.Features))
	}
	// Rename through PUT; the ID stays.
	code, body = s.send("PUT", "alice", "alice-pass-123", "/api/v1/fences/"+f.ID, strings.Replace(poly, "Park", "Big park", 1))
	if code != http.StatusOK || !strings.Contains(string(body), `"Big park"`) || !strings.Contains(string(body), f.ID) {
		t.Errorf("put: %d %s", code, body)
	}
	// The CLI sees the same, through the running server.
	if out := runCLI(t, "", "fence", "list", "--user", "alice", "--data", dir); !strings.Contains(out, "Big park") {
		t.Errorf("fence list:\n%s", out)
	}
	if code, _ := s.send("DELETE", "alice", "alice-pass-123", "/api/v1/fences/"+f.ID, ""); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := s.get("alice", "alice-pass-123", "/api/v1/fences/"+f.ID); code != http.StatusNotFound {
		t.Errorf("after delete: %d", code)
	}
	// Webhooks: a bad URL is refused; another user's is invisible.
	if code, body := s.send("POST", "alice", "alice-pass-123", "/api/v1/webhooks", `{"url":"ftp://x"}`); code != http.StatusBadRequest {
		t.Errorf("ftp webhook: %d %s", code, body)
	}
	code, body = s.send("POST", "alice", "alice-pass-123", "/api/v1/webhooks", `{"url":"http://127.0.0.1:9/hook"}`)
	var hook struct{ ID, Secret string }
	json.Unmarshal(body, &hook)
	if code != http.StatusCreated || len(hook.Secret) < 32 {
		t.Fatalf("webhook: %d %s (want a generated secret)", code, body)
	}
	if code, _ := s.get("bob", "bob-pass-1234", "/api/v1/webhooks/"+hook.ID+"/deliveries"); code != http.StatusNotFound {
		t.Errorf("bob reading alice's deliveries: %d", code)
	}
	if code, _ := s.send("DELETE", "bob", "bob-pass-1234", "/api/v1/webhooks/"+hook.ID, ""); code != http.StatusNotFound {
		t.Errorf("bob deleting alice's webhook: %d", code)
	}
	if code, _ := s.get("", "", "/api/v1/events"); code != http.StatusUnauthorized {
		t.Errorf("anonymous events: %d", code)
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTP+"/ws/events", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous /ws/events: %v %v", err, resp)
	}
}

func TestFenceCLIErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fence", "add", "Home", "--circle", "52.5,13.4,100"}, "--user"},
		{[]string{"fence", "add", "Home", "--user", "alice"}, "--circle"},
		{[]string{"fence", "add", "Home", "--user", "alice", "--circle", "52.5,13.4"}, "LAT,LON,RADIUS"},
		{[]string{"fence", "add", "Home", "--user", "alice", "--circle", "52.5,x,100"}, "not a number"},
		{[]string{"fence", "add", "Home", "--user", "alice", "--circle", "52.5,13.4,-5"}, "radius"},
		{[]string{"fence", "del", "nope"}, "no fence nope"},
		{[]string{"webhook", "add", "http://x", "--data", dir}, "--user"},
		{[]string{"webhook", "add", "mailto:x", "--user", "alice"}, "http"},
	} {
		cmd := exec.Command(binary, append(tc.args, "--data", dir)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("wherehouse %s: %v\n%s\nwant an error mentioning %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
