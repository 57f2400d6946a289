package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

// ShareRequest is the body of POST /api/v1/shares.
type ShareRequest struct {
	Owner     string    `json:"owner,omitempty"` // admins only; default: the caller
	Viewer    string    `json:"viewer"`
	Device    string    `json:"device,omitempty"`
	Until     time.Time `json:"until,omitzero"`
	Precision int       `json:"precision,omitempty"`
	History   bool      `json:"history,omitempty"`
}

// listShares serves GET /api/v1/shares: what the caller shares and what is
// shared with them (admins: all).
func (s *Server) listShares(c *echo.Context) error {
	me := currentUser(c)
	who := me.Name
	if me.Admin {
		who = ""
	}
	return c.JSON(http.StatusOK, s.Policy.Shares(who))
}

// addShare serves POST /api/v1/shares.
func (s *Server) addShare(c *echo.Context) error {
	me := currentUser(c)
	var req ShareRequest
	if err := c.Bind(&req); err != nil {
		return errBadRequest("body must be JSON: {\"viewer\":\"bob\",\"precision\":1000,...}")
	}
	owner := me.Name
	if req.Owner != "" && req.Owner != me.Name {
		if !me.Admin {
			return errForbidden
		}
		owner = strings.ToLower(req.Owner)
	}
	sh, err := s.Policy.AddShare(c.Request().Context(), storage.Share{
		Owner: owner, Viewer: strings.ToLower(req.Viewer), Device: strings.ToLower(req.Device),
		Until: req.Until, Precision: req.Precision, History: req.History,
	})
	if errors.Is(err, auth.ErrShareInvalid) {
		return errBadRequest(err.Error())
	}
	if err != nil {
		return err
	}
	s.Log.Info("share added", "owner", sh.Owner, "viewer", sh.Viewer, "device", sh.Device, "precision", sh.Precision, "by", me.Name)
	return c.JSON(http.StatusCreated, sh)
}

// revokeShare serves DELETE /api/v1/shares/:id. The owner, the viewer
// (declining it) and admins may revoke; it applies at once everywhere.
func (s *Server) revokeShare(c *echo.Context) error {
	me := currentUser(c)
	sh, ok := s.Policy.Share(c.Param("id"))
	if !ok || !(me.Admin || sh.Owner == me.Name || sh.Viewer == me.Name) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such share"}
	}
	if err := s.Policy.Revoke(c.Request().Context(), sh.ID); err != nil {
		return err
	}
	s.Log.Info("share revoked", "id", sh.ID, "owner", sh.Owner, "viewer", sh.Viewer, "by", me.Name)
	return c.NoContent(http.StatusNoContent)
}

// listGroups serves GET /api/v1/groups: the caller's groups (admins: all).
func (s *Server) listGroups(c *echo.Context) error {
	me := currentUser(c)
	groups := s.Policy.Groups()
	if !me.Admin {
		groups = slices.DeleteFunc(groups, func(g storage.Group) bool { return !slices.Contains(g.Members, me.Name) })
	}
	return c.JSON(http.StatusOK, groups)
}

// putGroup serves PUT /api/v1/groups/:name {"members":[...]} (admins).
func (s *Server) putGroup(c *echo.Context) error {
	var g storage.Group
	if err := c.Bind(&g); err != nil {
		return errBadRequest(`body must be JSON: {"members":["alice","bob"]}`)
	}
	g.Name = strings.ToLower(c.Param("name"))
	for i := range g.Members {
		g.Members[i] = strings.ToLower(g.Members[i])
	}
	if err := s.Policy.SetGroup(c.Request().Context(), g); errors.Is(err, auth.ErrShareInvalid) {
		return errBadRequest(err.Error())
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}

// deleteGroup serves DELETE /api/v1/groups/:name (admins).
func (s *Server) deleteGroup(c *echo.Context) error {
	err := s.Policy.DeleteGroup(c.Request().Context(), strings.ToLower(c.Param("name")))
	if errors.Is(err, storage.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such group"}
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
