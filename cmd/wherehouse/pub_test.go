package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wherehouse/wherehouse/crypto"
)

// pubRequest is one POST /pub as an app sends it.
type pubRequest struct {
	user, password string // basic auth; user "" sends no Authorization
	u, d           string // X-Limit-U / X-Limit-D headers, sent when set
	query          string // "u=alice&d=phone"
	agent          string // User-Agent
	body           string
}

// noRedirects is a client that shows a redirect instead of following it:
// /pub must never redirect (Android would turn the POST into a bodyless GET).
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

func (s *testServer) postPub(r pubRequest) (int, http.Header, []byte) {
	s.t.Helper()
	path := "/pub"
	if r.query != "" {
		path += "?" + r.query
	}
	req, _ := http.NewRequest(http.MethodPost, s.url(path), strings.NewReader(r.body))
	req.Header.Set("Content-Type", "application/json")
	if r.user != "" {
		req.SetBasicAuth(r.user, r.password)
	}
	if r.u != "" {
		req.Header.Set("X-Limit-U", r.u)
	}
	if r.d != "" {
		req.Header.Set("X-Limit-D", r.d)
	}
	if r.agent != "" {
		req.Header.Set("User-Agent", r.agent)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		s.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		s.t.Fatalf("POST %s redirected: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp.StatusCode, resp.Header, body
}

// pubOK posts and returns the reply array, failing unless it is a 200 with
// a plain JSON array every element of which the Android app can parse.
func (s *testServer) pubOK(r pubRequest) []map[string]any {
	s.t.Helper()
	code, h, body := s.postPub(r)
	if code != http.StatusOK {
		s.t.Fatalf("POST /pub: %d %s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.t.Errorf("POST /pub: Content-Type %q", ct)
	}
	return androidParse(s.t, body)
}

// androidParse decodes a /pub reply as the Android app does, all or
// nothing (PROTOCOL.md, HTTP mode): every element needs a known _type; a
// location needs tid or topic and a positive integer tst; tst, created_at
// and batt must be integers; a cmd needs an action Android knows.
func androidParse(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []map[string]any
	if err := dec.Decode(&out); err != nil || out == nil {
		t.Fatalf("reply is not a JSON array: %v: %s", err, body)
	}
	known := map[string]bool{"location": true, "card": true, "cmd": true, "transition": true, "waypoint": true, "waypoints": true, "lwt": true}
	actions := map[string]bool{"reportLocation": true, "setWaypoints": true, "clearWaypoints": true, "setConfiguration": true, "status": true}
	for _, e := range out {
		typ, _ := e["_type"].(string)
		if !known[typ] {
			t.Errorf("reply element with _type %q: %v", typ, e)
		}
		for _, k := range []string{"tst", "created_at", "batt"} {
			if v, ok := e[k]; ok {
				n, isNum := v.(json.Number)
				if !isNum || strings.ContainsAny(string(n), ".eE") {
					t.Errorf("reply element's %s is not an integer: %v", k, e)
				}
			}
		}
		switch typ {
		case "location":
			if e["tid"] == nil && e["topic"] == nil {
				t.Errorf("location without tid and topic: %v", e)
			}
			if n, _ := e["tst"].(json.Number).Int64(); n <= 0 {
				t.Errorf("location without a positive tst: %v", e)
			}
		case "cmd":
			if a, _ := e["action"].(string); !actions[a] {
				t.Errorf("cmd with an action Android does not know: %v", e)
			}
		}
	}
	return out
}

func ofType(reply []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range reply {
		if e["_type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

const androidAgent = "Owntracks-Android/gms/420504000"

// TestPubHTTPMode posts as the Android and iOS apps do and checks the
// status codes the apps depend on.
func TestPubHTTPMode(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-123")
	alice := func(r pubRequest) pubRequest { r.user, r.password = "alice", "alice-pass-123"; return r }

	// Android: X-Limit-U/D headers, basic auth. Stored before the 200.
	reply := s.pubOK(alice(pubRequest{u: "alice", d: "Phone", agent: androidAgent, body: location(52.1, 13.1, 1717225200, "ph")}))
	if len(reply) != 0 {
		t.Errorf("reply with nothing to say: %v, want []", reply)
	}
	if r := s.locations("alice", "alice-pass-123", "alice", "phone"); r.Count != 1 || r.Data[0]["lat"] != 52.1 {
		t.Errorf("android post stored as %+v", r)
	}
	// iOS: ?u=&d= (and its User-Agent); the reply is a plain array.
	code, _, body := s.postPub(alice(pubRequest{query: "u=alice&d=ipad", agent: "OwnTracks/26.1 CFNetwork", body: location(52.2, 13.2, 1717225201, "ip")}))
	if code != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("iOS post: %d %s, want 200 []", code, body)
	}
	if r := s.locations("alice", "alice-pass-123", "alice", "ipad"); r.Count != 1 {
		t.Errorf("iOS post stored %d", r.Count)
	}
	// The user defaults to the login name; the device may come from ?d=.
	s.pubOK(alice(pubRequest{query: "d=tablet", body: location(52.3, 13.3, 1717225202, "ta")}))
	if r := s.locations("alice", "alice-pass-123", "alice", "tablet"); r.Count != 1 {
		t.Errorf("post with ?d= only stored %d", r.Count)
	}
	// Other message types are stored too (a transition goes to .../event).
	s.pubOK(alice(pubRequest{u: "alice", d: "phone", body: `{"_type":"transition","event":"enter","desc":"Home","lat":52.1,"lon":13.1,"tst":1717225300,"wtst":1717000000,"acc":10,"tid":"ph"}`}))

	// An admin may post for someone else.
	s.pubOK(pubRequest{user: "admin", password: adminPassword, u: "alice", d: "watch", body: location(52.4, 13.4, 1717225203, "wa")})
	if r := s.locations("alice", "alice-pass-123", "alice", "watch"); r.Count != 1 {
		t.Errorf("admin posting for alice stored %d", r.Count)
	}

	big := `{"_type":"location","lat":1,"lon":1,"tst":1717225200,"pad":"` + strings.Repeat("x", 300<<10) + `"}`
	for _, tc := range []struct {
		name string
		req  pubRequest
		want int
	}{
		{"no Authorization (iOS default)", pubRequest{u: "alice", d: "phone", body: location(1, 1, 1717225200, "ph")}, http.StatusUnauthorized},
		{"wrong password", pubRequest{user: "alice", password: "wrong-password", u: "alice", d: "phone", body: location(1, 1, 1717225200, "ph")}, http.StatusUnauthorized},
		{"posting as another user", alice(pubRequest{u: "bob", d: "phone", body: location(1, 1, 1717225200, "ph")}), http.StatusForbidden},
		{"posting as another user in the query", alice(pubRequest{query: "u=bob&d=phone", body: location(1, 1, 1717225200, "ph")}), http.StatusForbidden},
		{"no device anywhere", alice(pubRequest{body: location(1, 1, 1717225200, "ph")}), http.StatusBadRequest},
		{"device with a slash", alice(pubRequest{u: "alice", d: "a/b", body: location(1, 1, 1717225200, "ph")}), http.StatusBadRequest},
		{"invalid JSON", alice(pubRequest{u: "alice", d: "phone", body: `{"_type":"location",`}), http.StatusBadRequest},
		{"location without tst", alice(pubRequest{u: "alice", d: "phone", body: `{"_type":"location","lat":1,"lon":2}`}), http.StatusBadRequest},
		{"empty body", alice(pubRequest{u: "alice", d: "phone"}), http.StatusBadRequest},
		{"too large", alice(pubRequest{u: "alice", d: "phone", body: big}), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := s.postPub(tc.req)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("error body is not JSON with an error: %s", body)
			}
			if code == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tc.name == "no device anywhere" && !strings.Contains(e.Error, "Device ID") {
				t.Errorf("error %q does not say to set the device id", e.Error)
			}
		})
	}
	// Nothing refused was stored.
	if r := s.locations("alice", "alice-pass-123", "alice", "phone"); r.Count != 1 {
		t.Errorf("alice/phone has %d locations after refused posts, want 1", r.Count)
	}
	var list struct{ Results []string }
	s.getJSON("admin", adminPassword, "/api/0/list", &list)
	for _, u := range list.Results {
		if u == "bob" {
			t.Errorf("a refused post for bob left data: %v", list.Results)
		}
	}
}

// TestPubEncrypted posts every encryption vector: an encrypted request
// gets one bare encrypted object whose plaintext is the reply array,
// sealed with the key that opened the request; a plain request gets a
// plain array; an encrypted request without a secret set is refused.
func TestPubEncrypted(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-123")
	s.addUser("bob", "bob-pass-123")
	runCLI(t, "", "share", "bob", "alice", "--data", dir)
	s.pubOK(pubRequest{user: "bob", password: "bob-pass-123", u: "bob", d: "phone", body: location(48.1, 11.5, 1717225000, "bo")})
	alice := func(r pubRequest) pubRequest { r.user, r.password = "alice", "alice-pass-123"; return r }

	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			runCLI(t, v.Secret+"\n", "key", "set", "alice", v.Name, "--data", dir)
			var pt map[string]any
			json.Unmarshal([]byte(v.Plaintext), &pt)
			code, _, body := s.postPub(alice(pubRequest{u: "alice", d: v.Name, body: string(v.Encrypted)}))
			if pt["_type"] == nil {
				if code != http.StatusBadRequest {
					t.Errorf("plaintext without _type: %d %s, want 400", code, body)
				}
				return
			}
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			var env map[string]any
			if err := json.Unmarshal(body, &env); err != nil || env["_type"] != "encrypted" || len(env) != 2 {
				t.Fatalf("reply is not one bare encrypted object: %s", body)
			}
			// Sealed with the very key that opened the request.
			var req struct{ Data string }
			json.Unmarshal(v.Encrypted, &req)
			var key [crypto.KeySize]byte
			for _, k := range crypto.Keys(v.Secret) {
				if _, err := crypto.Open(req.Data, k); err == nil {
					key = k
					break
				}
			}
			plain, err := crypto.Open(env["data"].(string), key)
			if err != nil {
				t.Fatalf("reply does not open with the request's key: %v", err)
			}
			reply := androidParse(t, plain)
			if locs := ofType(reply, "location"); len(locs) != 1 || locs[0]["topic"] != "owntracks/bob/phone" {
				t.Errorf("decrypted reply %s, want bob's location", plain)
			}
			if pt["_type"] == "location" {
				if r := s.locations("alice", "alice-pass-123", "alice", v.Name); r.Count != 1 || r.Data[0]["lat"] != pt["lat"] {
					t.Errorf("stored %+v, want the plaintext", r)
				}
			}
		})
	}

	// A plain request from a device with a secret gets a plain array.
	reply := s.pubOK(alice(pubRequest{u: "alice", d: "short-secret", body: location(1, 2, 1717229999, "ss")}))
	if len(ofType(reply, "location")) != 1 {
		t.Errorf("plain reply %v", reply)
	}
	// An encrypted request for a device without a secret can never be read.
	vectors := loadVectors(t)
	code, _, body := s.postPub(alice(pubRequest{u: "alice", d: "nokey", body: string(vectors[0].Encrypted)}))
	if code != http.StatusBadRequest {
		t.Errorf("encrypted without a secret: %d %s, want 400", code, body)
	}
	// Nor one sealed with another secret.
	runCLI(t, "another secret\n", "key", "set", "alice", "wrongkey", "--data", dir)
	code, _, body = s.postPub(alice(pubRequest{u: "alice", d: "wrongkey", body: string(vectors[0].Encrypted)}))
	if code != http.StatusBadRequest {
		t.Errorf("encrypted with the wrong secret: %d %s, want 400", code, body)
	}
}

// TestPubFriends checks the reply's friends: the last location of every
// device the poster may see (coarsened where the share says), each with a
// tid unique within the reply and a topic, their cards with the same tid,
// and never the poster's own devices.
func TestPubFriends(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		s.addUser(u, u+"-pass-123")
	}
	runCLI(t, "", "share", "bob", "alice", "--data", dir)
	runCLI(t, "", "share", "carol", "alice", "--precision", "1000", "--data", dir)
	post := func(user, device, body string) {
		t.Helper()
		s.pubOK(pubRequest{user: user, password: user + "-pass-123", u: user, d: device, body: body})
	}
	post("alice", "tablet", location(50.0, 8.0, 1717225100, "ta"))
	post("bob", "phone", location(48.137, 11.575, 1717225200, "ph"))
	post("bob", "phone", `{"_type":"card","name":"Bob","face":"aGVsbG8=","tid":"ph"}`)
	// Carol's tid collides with Bob's, and her app sent numbers Android
	// cannot read as integers.
	post("carol", "mobile", `{"_type":"location","lat":52.520008,"lon":13.404954,"tst":1717225300,"tid":"ph","acc":8.5,"batt":55.5,"created_at":1717225301.0,"inregions":["Home"]}`)
	post("dave", "phone", location(40.0, -3.0, 1717225400, "da"))

	var reply []map[string]any
	eventually(t, "bob's card in alice's reply", func() bool {
		reply = s.pubOK(pubRequest{user: "alice", password: "alice-pass-123", u: "alice", d: "phone", agent: androidAgent,
			body: location(50.1, 8.1, 1717225500, "ph")})
		return len(ofType(reply, "card")) == 1
	})
	locs := ofType(reply, "location")
	byTopic := map[string]map[string]any{}
	tids := map[string]bool{}
	for _, l := range locs {
		topic, _ := l["topic"].(string)
		tid, _ := l["tid"].(string)
		byTopic[topic] = l
		if tid == "" || tids[strings.ToLower(tid)] {
			t.Errorf("tid %q missing or not unique in %v", tid, locs)
		}
		tids[strings.ToLower(tid)] = true
		if strings.HasPrefix(topic, "owntracks/alice/") {
			t.Errorf("alice's own device in her reply: %v", l)
		}
	}
	if len(locs) != 2 || byTopic["owntracks/bob/phone"] == nil || byTopic["owntracks/carol/mobile"] == nil {
		t.Fatalf("friends %v, want bob/phone and carol/mobile", locs)
	}
	bob, carol := byTopic["owntracks/bob/phone"], byTopic["owntracks/carol/mobile"]
	if bob["tid"] != "ph" || bob["lat"] != json.Number("48.137") {
		t.Errorf("bob %v, want his own tid ph and exact position", bob)
	}
	if carol["tid"] == "ph" {
		t.Errorf("carol kept the colliding tid: %v", carol)
	}
	if carol["lat"] == json.Number("52.520008") || carol["inregions"] != nil {
		t.Errorf("carol shares at 1000 m but alice sees %v", carol)
	}
	if acc, _ := carol["acc"].(json.Number).Int64(); acc < 1000 {
		t.Errorf("carol's coarse acc %v", carol["acc"])
	}
	card := ofType(reply, "card")[0]
	if card["name"] != "Bob" || card["face"] != "aGVsbG8=" || card["tid"] != bob["tid"] {
		t.Errorf("card %v, want Bob's with tid %v", card, bob["tid"])
	}

	// An admin sees everyone else, and never themselves.
	s.pubOK(pubRequest{user: "admin", password: adminPassword, u: "admin", d: "phone", body: location(1, 1, 1717225600, "ad")})
	reply = s.pubOK(pubRequest{user: "admin", password: adminPassword, u: "admin", d: "phone", body: location(1, 1, 1717225601, "ad")})
	topics := map[string]bool{}
	for _, l := range ofType(reply, "location") {
		topics[l["topic"].(string)] = true
	}
	for _, want := range []string{"owntracks/alice/phone", "owntracks/alice/tablet", "owntracks/bob/phone", "owntracks/carol/mobile", "owntracks/dave/phone"} {
		if !topics[want] {
			t.Errorf("admin's reply lacks %s: %v", want, topics)
		}
	}
	if topics["owntracks/admin/phone"] {
		t.Errorf("admin's own device in the reply")
	}
	// Dave sees nobody.
	if reply := s.pubOK(pubRequest{user: "dave", password: "dave-pass-123", u: "dave", d: "phone", body: location(40.0, -3.0, 1717225700, "da")}); len(reply) != 0 {
		t.Errorf("dave's reply %v, want []", reply)
	}
}

// postCmd sends a command through the API.
func (s *testServer) postCmd(user, password, owner, device, body string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url("/api/v1/devices/"+owner+"/"+device+"/cmd"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("POST cmd: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestCmd sends commands through the API: published to the device's cmd
// topic on MQTT and queued for its next /pub reply, once.
func TestCmd(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-123")
	s.addUser("bob", "bob-pass-123")

	got := make(chan paho.Message, 10)
	sub := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	if tok := sub.Subscribe("owntracks/alice/phone/cmd", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	code, body := s.postCmd("alice", "alice-pass-123", "alice", "phone", `{"action":"reportLocation"}`)
	if code != http.StatusAccepted || strings.TrimSpace(string(body)) != `{"published":true,"queued":true}` {
		t.Fatalf("cmd: %d %s", code, body)
	}
	select {
	case m := <-got:
		var cmd map[string]any
		json.Unmarshal(m.Payload(), &cmd)
		if cmd["_type"] != "cmd" || cmd["action"] != "reportLocation" || m.Retained() {
			t.Errorf("MQTT got %s (retained %v)", m.Payload(), m.Retained())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cmd did not arrive on owntracks/alice/phone/cmd")
	}
	// The server's own publish is not ingested as a message of alice's.
	var devices struct{ Results []string }
	s.getJSON("alice", "alice-pass-123", "/api/0/list?user=alice", &devices)
	if len(devices.Results) != 0 {
		t.Errorf("the cmd was stored as a device message: alice has %v", devices.Results)
	}

	// HTTP mode: the next /pub reply of that device carries it, once.
	alicePost := func(device, agent string, tst int64) []map[string]any {
		return s.pubOK(pubRequest{user: "alice", password: "alice-pass-123", u: "alice", d: device, agent: agent, body: location(1, 2, tst, "ph")})
	}
	if cmds := ofType(alicePost("tablet", "", 1717225200), "cmd"); len(cmds) != 0 {
		t.Errorf("another device got %v", cmds)
	}
	if cmds := ofType(alicePost("phone", "", 1717225201), "cmd"); len(cmds) != 1 || cmds[0]["action"] != "reportLocation" {
		t.Errorf("first reply's cmds %v, want the reportLocation", cmds)
	}
	if cmds := ofType(alicePost("phone", "", 1717225202), "cmd"); len(cmds) != 0 {
		t.Errorf("second reply's cmds %v, want none", cmds)
	}

	// setWaypoints with a bare array is sent as a waypoints message; the
	// Android app gets no dump (it cannot parse one and would discard the
	// whole reply).
	for _, b := range []string{
		`{"action":"dump"}`,
		`{"_type":"cmd","action":"setWaypoints","waypoints":[{"_type":"waypoint","desc":"Home","lat":52.1,"lon":13.1,"rad":100,"tst":1717000000}]}`,
	} {
		if code, body := s.postCmd("admin", adminPassword, "alice", "phone", b); code != http.StatusAccepted {
			t.Fatalf("admin cmd %s: %d %s", b, code, body)
		}
	}
	cmds := ofType(alicePost("phone", androidAgent, 1717225203), "cmd")
	if len(cmds) != 1 || cmds[0]["action"] != "setWaypoints" {
		t.Fatalf("android reply's cmds %v, want only setWaypoints", cmds)
	}
	if w, _ := cmds[0]["waypoints"].(map[string]any); w["_type"] != "waypoints" || len(w["waypoints"].([]any)) != 1 {
		t.Errorf("setWaypoints carries %v", cmds[0]["waypoints"])
	}

	for _, tc := range []struct {
		name, user, password, owner, body string
		want                              int
	}{
		{"not the owner", "bob", "bob-pass-123", "alice", `{"action":"reportLocation"}`, http.StatusForbidden},
		{"no login", "", "", "alice", `{"action":"reportLocation"}`, http.StatusUnauthorized},
		{"unknown action", "alice", "alice-pass-123", "alice", `{"action":"selfDestruct"}`, http.StatusBadRequest},
		{"no action", "alice", "alice-pass-123", "alice", `{"_type":"cmd"}`, http.StatusBadRequest},
		{"not a cmd", "alice", "alice-pass-123", "alice", `{"_type":"location","action":"reportLocation"}`, http.StatusBadRequest},
		{"setWaypoints without waypoints", "alice", "alice-pass-123", "alice", `{"action":"setWaypoints"}`, http.StatusBadRequest},
		{"setConfiguration without configuration", "alice", "alice-pass-123", "alice", `{"action":"setConfiguration"}`, http.StatusBadRequest},
		{"not JSON", "alice", "alice-pass-123", "alice", `reportLocation`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := s.postCmd(tc.user, tc.password, tc.owner, "phone", tc.body); code != tc.want {
				t.Errorf("%d %s, want %d", code, body, tc.want)
			}
		})
	}
	// Nothing refused was queued or published: the refused requests came
	// between the admin's two cmds and a last one, and MQTT delivers in
	// order.
	if cmds := ofType(alicePost("phone", "", 1717225204), "cmd"); len(cmds) != 0 {
		t.Errorf("refused cmds were queued: %v", cmds)
	}
	if code, body := s.postCmd("alice", "alice-pass-123", "alice", "phone", `{"action":"clearWaypoints"}`); code != http.StatusAccepted {
		t.Fatalf("clearWaypoints: %d %s", code, body)
	}
	var actions []string
	for len(actions) == 0 || actions[len(actions)-1] != "clearWaypoints" {
		select {
		case m := <-got:
			var cmd map[string]any
			json.Unmarshal(m.Payload(), &cmd)
			a, _ := cmd["action"].(string)
			actions = append(actions, a)
		case <-time.After(10 * time.Second):
			t.Fatalf("published so far %v, and no clearWaypoints", actions)
		}
	}
	if strings.Join(actions, ",") != "dump,setWaypoints,clearWaypoints" {
		t.Errorf("published %v, want dump, setWaypoints, clearWaypoints", actions)
	}
}

// TestCmdExternalBroker publishes a command through an external broker,
// and checks wherehouse does not store its own publish, which the broker
// echoes to its owntracks/# subscription.
func TestCmdExternalBroker(t *testing.T) {
	addr := startMosquitto(t)
	s := startServer(t, t.TempDir(), "--broker", "tcp://"+addr, "--mqtt", "off", "--broker-client-id", "wh-cmd")
	eventually(t, "subscribed on mosquitto", func() bool { return containsLine(s.err.String(), "msg=subscribed") })
	app := mustMQTT(t, "tcp://"+addr, "jane-tablet", "", "")
	got := make(chan paho.Message, 1)
	if tok := app.Subscribe("owntracks/jane/tablet/cmd", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	code, body := s.postCmd("admin", adminPassword, "jane", "tablet", `{"action":"reportLocation"}`)
	if code != http.StatusAccepted || strings.TrimSpace(string(body)) != `{"published":true,"queued":true}` {
		t.Fatalf("cmd: %d %s", code, body)
	}
	select {
	case m := <-got:
		if !strings.Contains(string(m.Payload()), `"reportLocation"`) {
			t.Errorf("got %s", m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cmd did not arrive through mosquitto")
	}
	// A location published after the cmd arrives after it at wherehouse
	// too; once it is stored, the cmd would have been.
	publish(t, app, "owntracks/jane/phone", 1, false, location(1, 2, 1717225200, "jp"))
	eventually(t, "marker stored", func() bool { return s.locations("admin", adminPassword, "jane", "phone").Count == 1 })
	var devices struct{ Results []string }
	s.getJSON("admin", adminPassword, "/api/0/list?user=jane", &devices)
	if strings.Join(devices.Results, ",") != "phone" {
		t.Errorf("jane's devices %v: the server's own cmd was stored", devices.Results)
	}
}
