package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/storage"
)

// maxFenceBody bounds a fence definition (10,000 vertices fit easily).
const maxFenceBody = 1 << 20

var errNoFence = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such fence"}

// listFences serves GET /api/v1/fences: the caller's fences as a GeoJSON
// FeatureCollection (admins: everyone's, or ?owner=).
func (s *Server) listFences(c *echo.Context) error {
	me := currentUser(c)
	owner := me.Name
	if me.Admin {
		owner = strings.ToLower(c.QueryParam("owner"))
	}
	list, err := s.Fences.ListFences(c.Request().Context(), owner)
	if err != nil {
		return err
	}
	features := make([]json.RawMessage, 0, len(list))
	for _, f := range list {
		features = append(features, events.FenceFeature(f))
	}
	return c.JSON(http.StatusOK, map[string]any{"type": "FeatureCollection", "features": features})
}

// fenceOf loads fence :id if the caller owns it (or is an admin).
func (s *Server) fenceOf(c *echo.Context) (storage.Fence, error) {
	me := currentUser(c)
	f, err := s.Fences.Fence(c.Request().Context(), c.Param("id"))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !me.Admin && f.Owner != me.Name) {
		return f, errNoFence
	}
	return f, err
}

// getFence serves GET /api/v1/fences/:id as a GeoJSON Feature.
func (s *Server) getFence(c *echo.Context) error {
	f, err := s.fenceOf(c)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, events.FenceFeature(f))
}

// readFence parses a Feature body.
func readFence(c *echo.Context) (storage.Fence, error) {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxFenceBody+1))
	if err != nil {
		return storage.Fence{}, err
	}
	if len(body) > maxFenceBody {
		return storage.Fence{}, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "a fence definition may be at most 1 MiB"}
	}
	f, err := events.ParseFeature(body)
	if err != nil {
		return f, errBadRequest(err.Error())
	}
	return f, nil
}

// addFence serves POST /api/v1/fences with a GeoJSON Feature: a Polygon or
// MultiPolygon, or a Point with properties.radius (metres).
func (s *Server) addFence(c *echo.Context) error {
	me := currentUser(c)
	f, err := readFence(c)
	if err != nil {
		return err
	}
	f.Owner = me.Name
	if o := strings.ToLower(c.QueryParam("owner")); o != "" && o != me.Name {
		if !me.Admin {
			return errForbidden
		}
		f.Owner = o
	}
	return s.saveFence(c, f, http.StatusCreated)
}

// putFence serves PUT /api/v1/fences/:id: replaces the definition.
func (s *Server) putFence(c *echo.Context) error {
	old, err := s.fenceOf(c)
	if err != nil {
		return err
	}
	f, err := readFence(c)
	if err != nil {
		return err
	}
	f.ID, f.Owner, f.Created = old.ID, old.Owner, old.Created
	return s.saveFence(c, f, http.StatusOK)
}

func (s *Server) saveFence(c *echo.Context, f storage.Fence, status int) error {
	f, err := s.Events.PutFence(c.Request().Context(), f)
	if errors.Is(err, events.ErrInvalid) {
		return errBadRequest(err.Error())
	}
	if err != nil {
		return err
	}
	s.Log.Info("fence saved", "fence", f.ID, "owner", f.Owner, "name", f.Name, "by", currentUser(c).Name)
	return c.JSONBlob(status, events.FenceFeature(f))
}

// deleteFence serves DELETE /api/v1/fences/:id.
func (s *Server) deleteFence(c *echo.Context) error {
	f, err := s.fenceOf(c)
	if err != nil {
		return err
	}
	if err := s.Events.DeleteFence(c.Request().Context(), f.ID); err != nil {
		return err
	}
	s.Log.Info("fence deleted", "fence", f.ID, "owner", f.Owner, "by", currentUser(c).Name)
	return c.NoContent(http.StatusNoContent)
}

// occupants serves GET /api/v1/fences/:id/occupants: who is inside now,
// among the devices the caller may see.
func (s *Server) occupants(c *echo.Context) error {
	f, err := s.fenceOf(c)
	if err != nil {
		return err
	}
	me := currentUser(c)
	out := []events.Occupant{}
	for _, o := range s.Events.Occupants(f.ID) {
		if s.Events.CanSee(me, o.User, o.Device) {
			out = append(out, o)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// fenceTime serves GET /api/v1/fences/:id/time?from=&to=&tz=: seconds
// spent inside per device and day (days in tz, an IANA zone; default UTC).
// The range defaults to the last 7 days.
func (s *Server) fenceTime(c *echo.Context) error {
	f, err := s.fenceOf(c)
	if err != nil {
		return err
	}
	loc := time.UTC
	if tz := c.QueryParam("tz"); tz != "" {
		if loc, err = time.LoadLocation(tz); err != nil {
			return errBadRequest("unknown time zone " + tz + ": use an IANA name such as Europe/Berlin")
		}
	}
	now := time.Now()
	from, to, err := eventRange(c, now)
	if err != nil {
		return err
	}
	me := currentUser(c)
	var list []storage.Event
	err = s.EventStore.Events(c.Request().Context(), storage.EventQuery{From: 0, To: to.Unix()}, func(ev *storage.Event) error {
		if ev.Fence == f.ID && s.Events.CanSee(me, ev.User, ev.Device) {
			list = append(list, *ev)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Whoever was inside before from is counted from from on.
	end := min(to.Unix(), now.Unix())
	totals := events.TimeInside(list, f.ID, from.Unix(), end, loc)
	if totals == nil {
		totals = []events.DayTotal{}
	}
	return c.JSON(http.StatusOK, totals)
}
