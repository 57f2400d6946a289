package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

const alicePassword = "alice-pass-1"

// webAPI is an API server on a real embedded store with the user alice,
// for tests of the web app's endpoints.
type webAPI struct {
	*Server
	store    *embedded.Store
	accounts *auth.Accounts
	policy   *auth.Policy
}

func newWebAPI(t testing.TB) *webAPI {
	t.Helper()
	ctx := context.Background()
	store, err := embedded.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// A cheap hash: bcrypt at its default cost takes a second per check
	// under the race detector.
	if err := store.CreateUser(ctx, storage.User{Name: "alice", PasswordHash: cheapHash(t, alicePassword), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	accounts := auth.NewAccounts(store)
	policy, err := auth.NewPolicy(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Store: store, Devices: store, Accounts: accounts, Policy: policy, Live: recorder.NewLive(nil),
		Log: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry(), Version: "test",
		Sessions: store, TileURL: "https://tiles.example/{z}/{x}/{y}.png", TileAttribution: "&copy; Example",
		EventTopic: "wherehouse/events"})
	return &webAPI{Server: s, store: store, accounts: accounts, policy: policy}
}

// cheapHash is a bcrypt hash of password at the lowest cost.
func cheapHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// request is one test request; cookie and csrf are sent when set.
type request struct {
	method, path, body string
	cookie             *http.Cookie
	csrf               string
	basic              [2]string // user, password
	header             http.Header
	remote             string
}

func (a *webAPI) do(t testing.TB, r request) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.cookie != nil {
		req.AddCookie(r.cookie)
	}
	if r.csrf != "" {
		req.Header.Set(csrfHeader, r.csrf)
	}
	if r.basic[0] != "" {
		req.SetBasicAuth(r.basic[0], r.basic[1])
	}
	if r.remote != "" {
		req.RemoteAddr = r.remote
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	return w
}

// login logs in and returns the session cookie and the answer.
func (a *webAPI) login(t testing.TB, user, password string) (*http.Cookie, sessionInfo) {
	t.Helper()
	w := a.do(t, request{method: http.MethodPost, path: sessionPath, body: `{"user":"` + user + `","password":"` + password + `"}`})
	if w.Code != http.StatusOK {
		t.Fatalf("login %s: status %d: %s", user, w.Code, w.Body)
	}
	var info sessionInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	ck := responseCookie(t, w)
	return ck, info
}

func responseCookie(t testing.TB, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", sessionCookie, w.Header().Values("Set-Cookie"))
	return nil
}

// apiErrorOf decodes an error answer.
func apiErrorOf(t testing.TB, w *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	return e
}

func TestSessionLogin(t *testing.T) {
	a := newWebAPI(t)
	w := a.do(t, request{method: http.MethodPost, path: sessionPath, body: `{"user":"Alice","password":"` + alicePassword + `"}`})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := jsonObjectKeys(t, w.Body.Bytes()); strings.Join(got, ",") != "user,admin,csrf" {
		t.Errorf("keys %v, want user,admin,csrf", got)
	}
	var info sessionInfo
	json.Unmarshal(w.Body.Bytes(), &info)
	if info.User != "alice" || info.Admin || len(info.CSRF) != 43 {
		t.Errorf("answer %+v", info)
	}
	ck := responseCookie(t, w)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure || ck.MaxAge != 30*24*3600 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP, Max-Age 30 days", ck)
	}
	if len(ck.Value) != 43 { // 256 bits, base64url
		t.Errorf("token %q: want 43 characters", ck.Value)
	}
	// The store knows the token's hash, never the token.
	sess, err := a.store.Session(t.Context(), sessionID(ck.Value))
	if err != nil {
		t.Fatalf("stored session: %v", err)
	}
	if sess.User != "alice" || sess.CSRF != info.CSRF || sess.ID == ck.Value || strings.Contains(sess.ID, ck.Value) {
		t.Errorf("stored %+v", sess)
	}
	if d := time.Until(sess.Expires); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Errorf("expires in %v", d)
	}

	for name, r := range map[string]request{
		"TLS":               {method: http.MethodPost, path: "https://example.org" + sessionPath},
		"X-Forwarded-Proto": {method: http.MethodPost, path: sessionPath, header: http.Header{"X-Forwarded-Proto": {"https"}}},
	} {
		t.Run("secure over "+name, func(t *testing.T) {
			r.body = `{"user":"alice","password":"` + alicePassword + `"}`
			w := a.do(t, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if ck := responseCookie(t, w); !ck.Secure {
				t.Errorf("cookie %+v not Secure", ck)
			}
		})
	}
}

func TestSessionLoginRefused(t *testing.T) {
	a := newWebAPI(t)
	tests := []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"wrong password", `{"user":"alice","password":"nope-nope"}`, "application/json", 401, "unauthorized"},
		{"unknown user", `{"user":"mallory","password":"nope-nope"}`, "application/json", 401, "unauthorized"},
		{"not JSON", `user=alice&password=` + alicePassword, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"text/plain", `{"user":"alice","password":"` + alicePassword + `"}`, "text/plain", 415, "unsupported_media_type"},
		{"bad JSON", `{"user":"alice",`, "application/json", 400, "bad_request"},
		{"two objects", `{"user":"alice","password":"` + alicePassword + `"} {}`, "application/json", 400, "bad_request"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request{method: http.MethodPost, path: sessionPath, body: tc.body,
				header: http.Header{"Content-Type": {tc.contentType}}, remote: "192.0.2." + string(rune('1'+i)) + ":1234"}
			w := a.do(t, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if e := apiErrorOf(t, w); e.Code != tc.code || e.Status != tc.status || e.Message == "" {
				t.Errorf("error %+v, want code %s", e, tc.code)
			}
			if h := w.Header().Get("WWW-Authenticate"); h != "" {
				t.Errorf("WWW-Authenticate %q: the web app's login must not make the browser ask", h)
			}
			if len(w.Result().Cookies()) != 0 {
				t.Errorf("cookies set: %v", w.Result().Cookies())
			}
		})
	}
}

func TestSessionThrottle(t *testing.T) {
	a := newWebAPI(t)
	const attacker, other = "198.51.100.7:40000", "198.51.100.8:40000"
	bad := `{"user":"alice","password":"wrong-password"}`
	for i := range loginFailures {
		if w := a.do(t, request{method: http.MethodPost, path: sessionPath, body: bad, remote: attacker}); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d: %s", i+1, w.Code, w.Body)
		}
	}
	good := `{"user":"alice","password":"` + alicePassword + `"}`
	w := a.do(t, request{method: http.MethodPost, path: sessionPath, body: good, remote: attacker})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: status %d, want 429: %s", loginFailures, w.Code, w.Body)
	}
	if e := apiErrorOf(t, w); e.Code != "too_many_requests" {
		t.Errorf("error %+v", e)
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" || len(ra) > 3 {
		t.Errorf("Retry-After %q, want seconds up to %v", ra, loginWindow)
	}
	if w := a.do(t, request{method: http.MethodPost, path: sessionPath, body: good, remote: other}); w.Code != http.StatusOK {
		t.Errorf("another address: status %d: %s", w.Code, w.Body)
	}
	// Scripts with basic auth are not affected.
	if w := a.do(t, request{method: http.MethodGet, path: "/api/0/list", basic: [2]string{"alice", alicePassword}, remote: attacker}); w.Code != http.StatusOK {
		t.Errorf("basic auth from the throttled address: status %d", w.Code)
	}
}

func TestLoginLimiter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	l := newLoginLimiter(func() time.Time { return now })
	for range loginFailures - 1 {
		l.fail("a")
	}
	if d := l.blocked("a"); d != 0 {
		t.Fatalf("blocked %v after %d failures", d, loginFailures-1)
	}
	now = now.Add(time.Minute)
	l.fail("a")
	if d := l.blocked("a"); d != loginWindow-time.Minute {
		t.Fatalf("blocked %v, want %v (the window started at the first failure)", d, loginWindow-time.Minute)
	}
	if d := l.blocked("b"); d != 0 {
		t.Errorf("b blocked %v", d)
	}
	now = now.Add(loginWindow - time.Minute)
	if d := l.blocked("a"); d != 0 {
		t.Errorf("still blocked %v once the window has passed", d)
	}
	// A failure after the window starts a new count.
	l.fail("a")
	if d := l.blocked("a"); d != 0 {
		t.Errorf("blocked %v after one failure in a new window", d)
	}

	// The table stays bounded.
	for i := range maxThrottled + 10 {
		l.fail(time.Duration(i).String())
	}
	if n := len(l.seen); n > maxThrottled {
		t.Errorf("%d addresses remembered, want at most %d", n, maxThrottled)
	}
}

func TestSessionCookieAuth(t *testing.T) {
	a := newWebAPI(t)
	ck, info := a.login(t, "alice", alicePassword)
	share := `{"viewer":"alice","owner":"alice"}`

	tests := []struct {
		name   string
		r      request
		status int // 0: anything but 401 and 403
		code   string
	}{
		{"GET with cookie", request{method: http.MethodGet, path: "/api/0/list", cookie: ck}, 200, ""},
		{"GET session", request{method: http.MethodGet, path: sessionPath, cookie: ck}, 200, ""},
		{"POST without token", request{method: http.MethodPost, path: "/api/v1/shares", body: share, cookie: ck}, 403, "csrf"},
		{"POST with wrong token", request{method: http.MethodPost, path: "/api/v1/shares", body: share, cookie: ck, csrf: info.CSRF + "x"}, 403, "csrf"},
		{"POST with token", request{method: http.MethodPost, path: "/api/v1/shares", body: share, cookie: ck, csrf: info.CSRF}, 0, ""},
		{"PUT without token", request{method: http.MethodPut, path: "/api/v1/keys/alice/phone", body: `{"secret":"s"}`, cookie: ck}, 403, "csrf"},
		{"DELETE without token", request{method: http.MethodDelete, path: sessionPath, cookie: ck}, 403, "csrf"},
		{"POST with basic auth needs no token", request{method: http.MethodPost, path: "/api/v1/shares", body: share, basic: [2]string{"alice", alicePassword}}, 0, ""},
		{"pub is basic auth only", request{method: http.MethodPost, path: "/pub", body: `{"_type":"location","lat":1,"lon":2,"tst":1700000000}`, cookie: ck, csrf: info.CSRF}, 401, "unauthorized"},
		{"forged cookie", request{method: http.MethodGet, path: "/api/0/list", cookie: &http.Cookie{Name: sessionCookie, Value: randomToken()}}, 401, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := a.do(t, tc.r)
			switch {
			case tc.status == 0 && (w.Code == 401 || w.Code == 403):
				t.Fatalf("status %d: %s", w.Code, w.Body)
			case tc.status != 0 && w.Code != tc.status:
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.code != "" {
				if e := apiErrorOf(t, w); e.Code != tc.code {
					t.Errorf("code %q, want %q", e.Code, tc.code)
				}
			}
		})
	}

	t.Run("GET session answer", func(t *testing.T) {
		w := a.do(t, request{method: http.MethodGet, path: sessionPath, cookie: ck})
		var got sessionInfo
		json.Unmarshal(w.Body.Bytes(), &got)
		if got != info {
			t.Errorf("GET session = %+v, want %+v", got, info)
		}
		w = a.do(t, request{method: http.MethodGet, path: sessionPath, basic: [2]string{"alice", alicePassword}})
		if w.Code != 200 || w.Body.String() != `{"user":"alice","admin":false,"csrf":""}`+"\n" {
			t.Errorf("with basic auth: %d %s", w.Code, w.Body)
		}
	})

	t.Run("logout", func(t *testing.T) {
		w := a.do(t, request{method: http.MethodDelete, path: sessionPath, cookie: ck, csrf: info.CSRF})
		if w.Code != http.StatusNoContent {
			t.Fatalf("logout: status %d: %s", w.Code, w.Body)
		}
		if gone := responseCookie(t, w); gone.MaxAge >= 0 || gone.Value != "" {
			t.Errorf("logout cookie %+v: want it expired", gone)
		}
		w = a.do(t, request{method: http.MethodGet, path: "/api/0/list", cookie: ck})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("after logout: status %d", w.Code)
		}
		if h := w.Header().Get("WWW-Authenticate"); h != "" {
			t.Errorf("a request with a cookie got the challenge %q", h)
		}
	})
}

func TestSessionChallenge(t *testing.T) {
	a := newWebAPI(t)
	tests := []struct {
		name      string
		r         request
		challenge bool
	}{
		{"script", request{method: http.MethodGet, path: "/api/0/last"}, true},
		{"web app", request{method: http.MethodGet, path: "/api/0/last", header: http.Header{"X-Requested-With": {"XMLHttpRequest"}}}, false},
		{"am I logged in", request{method: http.MethodGet, path: sessionPath}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := a.do(t, tc.r)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", w.Code)
			}
			if got := w.Header().Get("WWW-Authenticate") != ""; got != tc.challenge {
				t.Errorf("challenge %v, want %v", got, tc.challenge)
			}
			if e := apiErrorOf(t, w); e.Code != "unauthorized" {
				t.Errorf("error %+v", e)
			}
		})
	}
}

func TestSessionEnds(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		end  func(a *webAPI) error
	}{
		{"password changed", func(a *webAPI) error { return a.accounts.SetPassword(ctx, "alice", "another-pass-2") }},
		{"user deleted", func(a *webAPI) error { return a.accounts.Delete(ctx, "alice") }},
		// A session outlives its user only in the store; it is no login.
		{"user gone from the store", func(a *webAPI) error { return a.store.DeleteUser(ctx, "alice") }},
		{"expired", func(a *webAPI) error {
			return a.store.DeleteUserSessions(ctx, "alice") // as buntdb's TTL does
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newWebAPI(t)
			ck, _ := a.login(t, "alice", alicePassword)
			other, _ := a.login(t, "alice", alicePassword)
			if err := tc.end(a); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*http.Cookie{ck, other} {
				if w := a.do(t, request{method: http.MethodGet, path: "/api/0/list", cookie: c}); w.Code != http.StatusUnauthorized {
					t.Errorf("status %d, want 401", w.Code)
				}
			}
		})
	}
	t.Run("expiry in the store", func(t *testing.T) {
		a := newWebAPI(t)
		token, sess := newSession("alice", time.Now())
		sess.Expires = time.Now().Add(-time.Second)
		if err := a.store.PutSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if w := a.do(t, request{method: http.MethodGet, path: "/api/0/list", cookie: &http.Cookie{Name: sessionCookie, Value: token}}); w.Code != http.StatusUnauthorized {
			t.Errorf("expired session: status %d", w.Code)
		}
	})
}

func TestSessionWebSocket(t *testing.T) {
	a := newWebAPI(t)
	ck, _ := a.login(t, "alice", alicePassword)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	t.Cleanup(a.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/last"
	h := http.Header{"Cookie": {ck.String()}, "Origin": {srv.URL}}
	conn, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatalf("dial with the session cookie: %v (%v)", err, resp)
	}
	conn.Close()
	_, resp, err = websocket.DefaultDialer.Dial(url, http.Header{"Origin": {srv.URL}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dial without a login: %v, %v; want 401", err, resp)
	}
	h.Set("Origin", "https://evil.example")
	if _, resp, err = websocket.DefaultDialer.Dial(url, h); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dial from another site with the cookie: %v; want 403", err)
	}
}

func TestConfig(t *testing.T) {
	a := newWebAPI(t)
	ck, _ := a.login(t, "alice", alicePassword)
	w := a.do(t, request{method: http.MethodGet, path: "/api/v1/config", cookie: ck})
	want := `{"tile_url":"https://tiles.example/{z}/{x}/{y}.png","tile_attribution":"\u0026copy; Example","version":"test","event_topic":"wherehouse/events"}` + "\n"
	if w.Code != http.StatusOK || w.Body.String() != want {
		t.Errorf("config: %d %s\nwant %s", w.Code, w.Body, want)
	}
	if w := a.do(t, request{method: http.MethodGet, path: "/api/v1/config"}); w.Code != http.StatusUnauthorized {
		t.Errorf("config without login: status %d", w.Code)
	}
}

var _ storage.Sessions = (*embedded.Store)(nil)
