package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// webClient talks to the server as the web app does: the session cookie,
// and the CSRF token on unsafe requests when csrf is set.
type webClient struct {
	s      *testServer
	cookie *http.Cookie
	csrf   string
}

// do sends a request with the cookie and returns status, headers and body.
func (w *webClient) do(method, path, body string, withToken bool) (int, http.Header, []byte) {
	w.s.t.Helper()
	req, _ := http.NewRequest(method, w.s.url(path), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if w.cookie != nil {
		req.AddCookie(w.cookie)
	}
	if withToken {
		req.Header.Set("X-CSRF-Token", w.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// login posts the credentials; on 200 it keeps the cookie and token.
func (s *testServer) login(user, password string) (*webClient, int, http.Header, []byte) {
	s.t.Helper()
	w := &webClient{s: s}
	body := fmt.Sprintf(`{"user":%q,"password":%q}`, user, password)
	code, h, b := w.do(http.MethodPost, "/api/v1/session", body, false)
	if code != http.StatusOK {
		return nil, code, h, b
	}
	resp := http.Response{Header: h}
	for _, c := range resp.Cookies() {
		if c.Name == "wherehouse_session" {
			w.cookie = c
		}
	}
	var info struct{ CSRF string }
	json.Unmarshal(b, &info)
	w.csrf = info.CSRF
	return w, code, h, b
}

func (s *testServer) mustLogin(user, password string) *webClient {
	s.t.Helper()
	w, code, _, body := s.login(user, password)
	if code != http.StatusOK || w.cookie == nil || w.csrf == "" {
		s.t.Fatalf("login %s: %d %s", user, code, body)
	}
	return w
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Code string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code
}

func TestSessionWebLogin(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")

	w, code, h, body := s.login("alice", "alice-pass-123")
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	setCookie := h.Get("Set-Cookie")
	for _, attr := range []string{"wherehouse_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"} {
		if !strings.Contains(setCookie, attr) {
			t.Errorf("Set-Cookie %q lacks %s", setCookie, attr)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("Set-Cookie %q: Secure over plain HTTP would lose the cookie", setCookie)
	}
	var info map[string]any
	json.Unmarshal(body, &info)
	if info["user"] != "alice" || info["admin"] != false || info["csrf"] != w.csrf || len(info) != 3 {
		t.Errorf("login answer %s", body)
	}

	// The cookie is a login for reading.
	if code, _, body := w.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusOK || !strings.Contains(string(body), "alice") {
		t.Errorf("GET /api/0/list with the cookie: %d %s", code, body)
	}
	if code, _, body := w.do(http.MethodGet, "/api/v1/session", "", false); code != http.StatusOK || !bytes.Contains(body, []byte(w.csrf)) {
		t.Errorf("GET /api/v1/session: %d %s", code, body)
	}
	// Changes need the token.
	share := `{"owner":"alice","viewer":"admin"}`
	if code, _, body := w.do(http.MethodPost, "/api/v1/shares", share, false); code != http.StatusForbidden || errorCode(t, body) != "csrf" {
		t.Errorf("POST without X-CSRF-Token: %d %s, want 403 csrf", code, body)
	}
	if code, _, body := w.do(http.MethodPost, "/api/v1/shares", share, true); code != http.StatusCreated && code != http.StatusOK {
		t.Errorf("POST with X-CSRF-Token: %d %s", code, body)
	}
	// Scripts with basic auth need none.
	if code, body := s.send(http.MethodPost, "alice", "alice-pass-123", "/api/v1/shares", `{"owner":"alice","viewer":"admin","precision":500}`); code == http.StatusForbidden {
		t.Errorf("POST with basic auth: %d %s", code, body)
	}
	// The apps' /pub takes no cookie.
	if code, _, _ := w.do(http.MethodPost, "/pub", location(52.5, 13.4, 1714557120, "al"), true); code != http.StatusUnauthorized {
		t.Errorf("/pub with the cookie: %d, want 401", code)
	}

	// Logout needs the token too, and ends the session.
	if code, _, body := w.do(http.MethodDelete, "/api/v1/session", "", false); code != http.StatusForbidden || errorCode(t, body) != "csrf" {
		t.Errorf("DELETE without token: %d %s", code, body)
	}
	code, h, _ = w.do(http.MethodDelete, "/api/v1/session", "", true)
	if code != http.StatusNoContent || !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d, Set-Cookie %q", code, h.Get("Set-Cookie"))
	}
	if code, h, _ := w.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != "" {
		t.Errorf("after logout: %d (WWW-Authenticate %q), want 401 without a challenge", code, h.Get("WWW-Authenticate"))
	}
}

func TestSessionWrongPasswordThrottled(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")
	_, code, h, body := s.login("alice", "not-her-password")
	if code != http.StatusUnauthorized || errorCode(t, body) != "unauthorized" || h.Get("WWW-Authenticate") != "" {
		t.Fatalf("wrong password: %d %s (WWW-Authenticate %q)", code, body, h.Get("WWW-Authenticate"))
	}
	// Nine more failures (side by side: bcrypt is slow under -race).
	var wg sync.WaitGroup
	codes := make([]int, 9)
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, s.url("/api/v1/session"), strings.NewReader(`{"user":"alice","password":"guess-`+fmt.Sprint(i)+`"}`))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+2, c)
		}
	}
	_, code, h, body = s.login("alice", "alice-pass-123")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("after 10 failures: %d %s (Retry-After %q), want 429", code, body, h.Get("Retry-After"))
	}
	// Basic auth (scripts, apps) goes on.
	if code, _ := s.get("alice", "alice-pass-123", "/api/0/list"); code != http.StatusOK {
		t.Errorf("basic auth while throttled: %d", code)
	}
}

func TestSessionEndsWithPassword(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("alice", "alice-pass-123")
	s.addUser("bob", "bob-pass-1234")
	alice, bob := s.mustLogin("alice", "alice-pass-123"), s.mustLogin("bob", "bob-pass-1234")

	runCLI(t, "alice-pass-456\n", "user", "passwd", "alice", "--password-stdin", "--data", dir)
	if code, _, _ := alice.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusUnauthorized {
		t.Errorf("alice's cookie after her password changed: %d, want 401", code)
	}
	if code, _, _ := bob.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusOK {
		t.Errorf("bob's cookie: %d, want 200", code)
	}
	alice = s.mustLogin("alice", "alice-pass-456")
	runCLI(t, "", "user", "del", "alice", "--data", dir)
	if code, _, _ := alice.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusUnauthorized {
		t.Errorf("alice's cookie after her account was deleted: %d, want 401", code)
	}

	// Sessions survive a restart, and the CLI ends them without a server too.
	s.stop()
	runCLI(t, "bob-pass-5678\n", "user", "passwd", "bob", "--password-stdin", "--data", dir)
	s = startServer(t, dir)
	bob.s = s
	if code, _, _ := bob.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusUnauthorized {
		t.Errorf("bob's cookie after an offline password change: %d, want 401", code)
	}
	carol := func() *webClient {
		s.addUser("carol", "carol-pass-123")
		return s.mustLogin("carol", "carol-pass-123")
	}()
	s.stop()
	s = startServer(t, dir)
	carol.s = s
	if code, _, _ := carol.do(http.MethodGet, "/api/0/list", "", false); code != http.StatusOK {
		t.Errorf("carol's cookie after a restart: %d, want 200", code)
	}
}

// zigzagTrack posts n fixes of alice's phone going east, alternately
// 100 m north and back, one a minute, and waits until all are stored.
func zigzagTrack(t *testing.T, s *testServer, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf(`{"_type":"location","lat":%v,"lon":%v,"tst":%d,"tid":"al","acc":5,"alt":%d,"batt":70}`,
			52.5+float64(i%2)*0.0009, 13.4+float64(i)*0.001, 1714557120+60*i, 30+i)
		if code, _, b := s.postPub(pubRequest{user: "alice", password: "alice-pass-123", d: "phone", body: body}); code != http.StatusOK {
			t.Fatalf("pub %d: %d %s", i, code, b)
		}
	}
	eventually(t, "track stored", func() bool { return s.locations("alice", "alice-pass-123", "alice", "phone").Count == n })
}

func TestSimplifiedHistory(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")
	const n = 41
	zigzagTrack(t, s, n)
	w := s.mustLogin("alice", "alice-pass-123")
	base := "/api/0/locations?user=alice&device=phone&from=2024-05-01&to=2024-05-02"
	first, last := int64(1714557120), int64(1714557120+60*(n-1))
	tests := []struct {
		query  string
		points string
		count  int
	}{
		{"&simplify=10", "41/41", n}, // every corner is 100 m off
		{"&simplify=200", "2/41", 2}, // all within 200 m of the straight line
		{"&max_points=7", "7/41", 7}, //
		{"&simplify=10&max_points=2&format=geojson", "2/41", 2},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			code, h, body := w.do(http.MethodGet, base+tc.query, "", false)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			if got := h.Get("X-Wherehouse-Points"); got != tc.points {
				t.Errorf("X-Wherehouse-Points %q, want %q", got, tc.points)
			}
			var r struct {
				Count    int
				Data     []struct{ TST int64 }
				Features []struct{ Properties struct{ TST int64 } }
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			var tsts []int64
			for _, d := range r.Data {
				tsts = append(tsts, d.TST)
			}
			for _, f := range r.Features {
				tsts = append(tsts, f.Properties.TST)
			}
			if len(tsts) != tc.count || tsts[0] != first || tsts[len(tsts)-1] != last {
				t.Errorf("tst %v: want %d points from %d to %d", tsts, tc.count, first, last)
			}
		})
	}
	if code, body := s.get("alice", "alice-pass-123", base+"&max_points=1"); code != http.StatusBadRequest {
		t.Errorf("max_points=1: %d %s", code, body)
	}
}

func TestExportFormats(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")
	const n = 4
	zigzagTrack(t, s, n)
	base := "/api/0/locations?user=alice&device=phone&from=2024-05-01&to=2024-05-01"

	req, _ := http.NewRequest(http.MethodGet, s.url(base+"&format=gpx"), nil)
	req.SetBasicAuth("alice", "alice-pass-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/gpx+xml" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="alice-phone-2024-05-01-2024-05-01.gpx"` {
		t.Fatalf("gpx: %d %v", resp.StatusCode, resp.Header)
	}
	var gpx struct {
		XMLName xml.Name `xml:"http://www.topografix.com/GPX/1/1 gpx"`
		Trk     []struct {
			Seg []struct {
				Pt []struct {
					Lat  string `xml:"lat,attr"`
					Lon  string `xml:"lon,attr"`
					Ele  string `xml:"ele"`
					Time string `xml:"time"`
				} `xml:"trkpt"`
			} `xml:"trkseg"`
		} `xml:"trk"`
	}
	if err := xml.Unmarshal(body, &gpx); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(gpx.Trk) != 1 || len(gpx.Trk[0].Seg) != 1 || len(gpx.Trk[0].Seg[0].Pt) != n {
		t.Fatalf("gpx shape: %s", body)
	}
	if p := gpx.Trk[0].Seg[0].Pt[1]; p.Lat != "52.5009" || p.Lon != "13.401" || p.Ele != "31" || p.Time != "2024-05-01T09:53:00Z" {
		t.Errorf("second trkpt %+v", p)
	}

	code, body := s.get("alice", "alice-pass-123", base+"&format=csv")
	if code != http.StatusOK {
		t.Fatalf("csv: %d %s", code, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(rows) != n+1 || strings.Join(rows[0], ",") != "tst,isotst,lat,lon,acc,alt,vel,cog,batt,tid" ||
		strings.Join(rows[2], ",") != "1714557180,2024-05-01T09:53:00Z,52.5009,13.401,5,31,,,70,al" {
		t.Errorf("csv:\n%s", body)
	}
	// Simplified downloads keep the shape.
	code, body = s.get("alice", "alice-pass-123", base+"&format=csv&max_points=2")
	if rows, _ := csv.NewReader(bytes.NewReader(body)).ReadAll(); code != http.StatusOK || len(rows) != 3 || rows[1][0] != "1714557120" || rows[2][0] != "1714557300" {
		t.Errorf("csv with max_points=2: %d\n%s", code, body)
	}
}

func TestConfigEndpoint(t *testing.T) {
	d := startServer(t, t.TempDir())
	var cfg map[string]any
	d.getJSON("admin", adminPassword, "/api/v1/config", &cfg)
	if cfg["tile_url"] != DefaultTileURL || cfg["tile_attribution"] != DefaultTileAttribution || cfg["event_topic"] != "wherehouse/events" {
		t.Errorf("defaults: %v", cfg)
	}
	if v, _ := cfg["version"].(string); v == "" || len(cfg) != 4 {
		t.Errorf("config %v", cfg)
	}
	if code, _ := d.get("", "", "/api/v1/config"); code != http.StatusUnauthorized {
		t.Errorf("config without login: %d", code)
	}
	d.stop()

	t.Setenv("WHEREHOUSE_TILE_ATTRIBUTION", "Tiles &copy; Example")
	s := startServer(t, t.TempDir(), "--tile-url", "https://tiles.example.org/{z}/{x}/{y}.png", "--event-topic", "off")
	cfg = nil
	s.getJSON("admin", adminPassword, "/api/v1/config", &cfg)
	want := map[string]any{"tile_url": "https://tiles.example.org/{z}/{x}/{y}.png", "tile_attribution": "Tiles &copy; Example", "event_topic": ""}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %v, want %v", k, cfg[k], v)
		}
	}
}
