package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

// Web app logins: POST /api/v1/session trades a user name and password for
// a cookie holding a random token; the store keeps only the token's
// SHA-256. Scripts and the apps keep using HTTP basic auth.
const (
	sessionCookie = "wherehouse_session"
	sessionPath   = "/api/v1/session"
	sessionTTL    = 30 * 24 * time.Hour
	csrfHeader    = "X-CSRF-Token"
	tokenBytes    = 32 // 256 bits, for the session token and the CSRF token
	maxLoginBody  = 4 << 10

	// A client address gets loginFailures wrong passwords per
	// loginWindow; then 429 until the window ends.
	loginFailures = 10
	loginWindow   = 5 * time.Minute
	// maxThrottled bounds the addresses remembered; beyond it expired
	// entries are swept, and if that is not enough all are forgotten.
	maxThrottled = 10000
)

var (
	errNoSession     = errors.New("no valid session cookie")
	errLoginRequired = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "login required: log in with POST /api/v1/session or use HTTP basic auth"}
	errBadLogin = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "wrong user name or password"}
	errCSRF = &apiError{Status: http.StatusForbidden, Code: "csrf",
		Message: "missing or wrong " + csrfHeader + " header: send the csrf value of POST or GET /api/v1/session"}
)

// sessionInfo is the answer of /api/v1/session. CSRF is "" for a basic
// auth login, which needs no token.
type sessionInfo struct {
	User  string `json:"user"`
	Admin bool   `json:"admin"`
	CSRF  string `json:"csrf"`
}

// login serves POST /api/v1/session: {"user":…,"password":…}.
func (s *Server) login(limit *loginLimiter) echo.HandlerFunc {
	return func(c *echo.Context) error {
		ip := c.RealIP()
		if wait := limit.blocked(ip); wait > 0 {
			secs := int((wait + time.Second - 1) / time.Second)
			c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
			return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_requests",
				Message: "too many failed logins from your address: try again in " + strconv.Itoa(secs) + " s"}
		}
		var req struct {
			User     string `json:"user"`
			Password string `json:"password"`
		}
		if err := decodeLogin(c, &req); err != nil {
			return err
		}
		ctx := c.Request().Context()
		name := strings.ToLower(req.User)
		u, err := s.Accounts.Authenticate(ctx, name, req.Password)
		if errors.Is(err, auth.ErrBadCredentials) {
			limit.fail(ip)
			s.Log.Warn("web login denied", "user", name, "remote", ip)
			// No Basic challenge: the app shows its own form.
			return c.JSON(http.StatusUnauthorized, errBadLogin)
		}
		if err != nil {
			return err
		}
		token, sess := newSession(u.Name, time.Now())
		if err := s.Sessions.PutSession(ctx, sess); err != nil {
			return err
		}
		c.SetCookie(sessionCookieFor(c, token, int(sessionTTL/time.Second), sess.Expires))
		s.Log.Info("web login", "user", u.Name, "remote", ip)
		return c.JSON(http.StatusOK, sessionInfo{User: u.Name, Admin: u.Admin, CSRF: sess.CSRF})
	}
}

// decodeLogin reads the login's JSON body. Only JSON is taken: a form on
// another site can post text/plain or a form without asking, but not
// application/json, so nobody can be logged in as someone else unawares.
func decodeLogin(c *echo.Context, v any) error {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationJSON {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: `send Content-Type: application/json with {"user":…,"password":…}`}
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), r.Body, maxLoginBody))
	if err := dec.Decode(v); err != nil || dec.Decode(&struct{}{}) != io.EOF {
		return errBadRequest(`send {"user":…,"password":…} as one JSON object`)
	}
	return nil
}

// getSession serves GET /api/v1/session: who is logged in.
func (s *Server) getSession(c *echo.Context) error {
	me := currentUser(c)
	info := sessionInfo{User: me.Name, Admin: me.Admin}
	if sess, ok := c.Get(ctxSession).(storage.Session); ok {
		info.CSRF = sess.CSRF
	}
	return c.JSON(http.StatusOK, info)
}

// logout serves DELETE /api/v1/session: the stored session is deleted and
// the cookie expired.
func (s *Server) logout(c *echo.Context) error {
	if sess, ok := c.Get(ctxSession).(storage.Session); ok {
		err := s.Sessions.DeleteSession(c.Request().Context(), sess.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		s.Log.Info("web logout", "user", sess.User)
	}
	c.SetCookie(sessionCookieFor(c, "", -1, time.Unix(0, 0)))
	return c.NoContent(http.StatusNoContent)
}

// sessionLogin returns the user and session of the request's cookie;
// errNoSession when there is none, it is unknown or expired, or its user
// is gone.
func (s *Server) sessionLogin(c *echo.Context) (storage.User, storage.Session, error) {
	if s.Sessions == nil {
		return storage.User{}, storage.Session{}, errNoSession
	}
	ck, err := c.Request().Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return storage.User{}, storage.Session{}, errNoSession
	}
	ctx := c.Request().Context()
	sess, err := s.Sessions.Session(ctx, sessionID(ck.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, storage.Session{}, errNoSession
	}
	if err != nil {
		return storage.User{}, storage.Session{}, err
	}
	u, err := s.Accounts.Get(ctx, sess.User)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, storage.Session{}, errNoSession
	}
	if err != nil {
		return storage.User{}, storage.Session{}, err
	}
	return u, sess, nil
}

// newSession returns a new session of user and the token for its cookie.
func newSession(user string, now time.Time) (string, storage.Session) {
	token := randomToken()
	return token, storage.Session{
		ID:      sessionID(token),
		User:    user,
		CSRF:    randomToken(),
		Created: now.UTC(),
		Expires: now.Add(sessionTTL).UTC(),
	}
}

// sessionID is what the store keeps of a token: its SHA-256, so the
// store's contents cannot be replayed as a cookie.
func sessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionCookieFor builds the session cookie; maxAge < 0 deletes it.
// Secure when the request came over TLS, directly or through a proxy
// that says so.
func sessionCookieFor(c *echo.Context, token string, maxAge int, expires time.Time) *http.Cookie {
	r := c.Request()
	return &http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   maxAge,
		Expires:  expires,
		HttpOnly: true,
		Secure:   r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		SameSite: http.SameSiteStrictMode,
	}
}

// loginLimiter counts failed logins per client address in fixed windows.
// A success does not reset the count: with an account of their own,
// someone could otherwise guess others' passwords without end.
type loginLimiter struct {
	now func() time.Time

	mu   sync.Mutex
	seen map[string]loginFailure
}

type loginFailure struct {
	first time.Time // start of the window
	n     int
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, seen: map[string]loginFailure{}}
}

// blocked returns how long ip must wait before trying again; 0 if it may.
func (l *loginLimiter) blocked(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.seen[ip]
	if !ok || f.n < loginFailures {
		return 0
	}
	wait := f.first.Add(loginWindow).Sub(l.now())
	if wait <= 0 {
		delete(l.seen, ip)
		return 0
	}
	return wait
}

// fail counts a failed login of ip.
func (l *loginLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.seen[ip]
	if !ok || !now.Before(f.first.Add(loginWindow)) {
		f = loginFailure{first: now}
	}
	f.n++
	if !ok && len(l.seen) >= maxThrottled {
		for k, v := range l.seen {
			if !now.Before(v.first.Add(loginWindow)) {
				delete(l.seen, k)
			}
		}
		if len(l.seen) >= maxThrottled {
			clear(l.seen)
		}
	}
	l.seen[ip] = f
}
