package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/storage"
)

// keyOwner checks that the caller may manage :user's secrets (themselves
// or an admin) and returns user and device from the path.
func (s *Server) keyOwner(c *echo.Context) (string, string, error) {
	me := currentUser(c)
	user, device := strings.ToLower(c.Param("user")), strings.ToLower(c.Param("device"))
	if !me.Admin && me.Name != user {
		return "", "", errForbidden
	}
	if s.Secrets == nil {
		return "", "", &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "secrets are not configured"}
	}
	return user, device, nil
}

// setKey serves PUT /api/v1/keys/:user/:device {"secret":"..."}: the
// secret typed into the app's encryption setting ("*" as device: all of the
// user's devices without their own). It is never returned by any endpoint.
func (s *Server) setKey(c *echo.Context) error {
	user, device, err := s.keyOwner(c)
	if err != nil {
		return err
	}
	var req struct {
		Secret string `json:"secret"`
	}
	if err := c.Bind(&req); err != nil || req.Secret == "" {
		return errBadRequest(`body must be JSON: {"secret":"..."}`)
	}
	if err := s.Secrets.Set(c.Request().Context(), user, device, req.Secret); err != nil {
		return err
	}
	s.Log.Info("encryption secret set", "user", user, "device", device, "by", currentUser(c).Name)
	return c.NoContent(http.StatusNoContent)
}

// deleteKey serves DELETE /api/v1/keys/:user/:device.
func (s *Server) deleteKey(c *echo.Context) error {
	user, device, err := s.keyOwner(c)
	if err != nil {
		return err
	}
	err = s.Secrets.Delete(c.Request().Context(), user, device)
	if errors.Is(err, storage.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no secret set for that device"}
	}
	if err != nil {
		return err
	}
	s.Log.Info("encryption secret deleted", "user", user, "device", device, "by", currentUser(c).Name)
	return c.NoContent(http.StatusNoContent)
}
