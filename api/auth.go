package api

import (
	"errors"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

const ctxUser = "wherehouse.user"

// requireUser authenticates with HTTP basic auth; without valid
// credentials the request gets a JSON 401.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
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
