package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

const (
	ctxUser    = "wherehouse.user"
	ctxSession = "wherehouse.session" // the storage.Session of a cookie login
)

// requireUser authenticates with HTTP basic auth or, for the web app, the
// session cookie; without either the request gets a JSON 401. A request
// that came with the cookie must also send the session's CSRF token with
// every unsafe method. Basic auth needs no token: a page on another site
// cannot set that header, and the browser never adds it on its own
// except for credentials the user typed for this site.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if _, _, ok := c.Request().BasicAuth(); ok {
			return s.requireBasic(next)(c)
		}
		u, sess, err := s.sessionLogin(c)
		if errors.Is(err, errNoSession) {
			return s.unauthorized(c)
		}
		if err != nil {
			return err
		}
		if !safeMethod(c.Request().Method) && !auth.ConstantTimeEqual(c.Request().Header.Get(csrfHeader), sess.CSRF) {
			s.Log.Warn("csrf token missing or wrong", "user", u.Name, "remote", c.RealIP(), "path", c.Request().URL.Path)
			return errCSRF
		}
		c.Set(ctxUser, u)
		c.Set(ctxSession, sess)
		return next(c)
	}
}

// requireBasic authenticates with HTTP basic auth only: the apps' /pub,
// where a browser's cookie has no business.
func (s *Server) requireBasic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		name, password, ok := c.Request().BasicAuth()
		if !ok {
			return errUnauthorized
		}
		u, err := s.Accounts.Authenticate(c.Request().Context(), strings.ToLower(name), password)
		if errors.Is(err, auth.ErrBadCredentials) {
			s.Log.Warn("http login denied", "user", name, "remote", c.RealIP(), "path", c.Request().URL.Path)
			return errUnauthorized
		}
		if err != nil {
			return err
		}
		c.Set(ctxUser, u)
		return next(c)
	}
}

// unauthorized answers a request without credentials. The web app (it
// sends the cookie, or X-Requested-With, or asks GET /api/v1/session
// whether it is logged in) gets the 401 without a Basic challenge, which would make the browser pop up its own login dialog
// over the app's; everyone else gets the challenge.
func (s *Server) unauthorized(c *echo.Context) error {
	r := c.Request()
	_, err := r.Cookie(sessionCookie)
	if err != nil && r.Header.Get("X-Requested-With") == "" && c.Path() != sessionPath {
		return errUnauthorized
	}
	return c.JSON(http.StatusUnauthorized, errLoginRequired)
}

// safeMethod reports whether a method changes nothing (RFC 9110 9.2.1),
// so needs no CSRF token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if !currentUser(c).Admin {
			return &apiError{Status: 403, Code: "forbidden", Message: "admin only"}
		}
		return next(c)
	}
}

func currentUser(c *echo.Context) storage.User {
	u, _ := c.Get(ctxUser).(storage.User)
	return u
}
