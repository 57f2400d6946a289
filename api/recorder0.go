package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/storage"
)

// list serves GET /api/0/list: the users the caller may see, or with
// ?user= that user's devices. Someone the caller may not see looks the
// same as someone without data: an empty list.
func (s *Server) list(c *echo.Context) error {
	ctx := c.Request().Context()
	me := currentUser(c)
	if user := strings.ToLower(param(c, "user")); user != "" {
		devices := []string{}
		if s.Policy.CanSee(me, user) {
			all, err := s.Store.Devices(ctx, user)
			if err != nil {
				return err
			}
			// A share may cover only some of the owner's devices.
			for _, d := range all {
				if _, ok := s.Policy.Grant(me, user, d); ok {
					devices = append(devices, d)
				}
			}
		}
		return c.JSON(http.StatusOK, map[string][]string{"results": devices})
	}
	users, err := s.visibleUsers(ctx, me)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]string{"results": users})
}

// visibleUsers returns the sorted names the caller may see: themselves and
// who shares with them, or for an admin every account and everyone with data.
func (s *Server) visibleUsers(ctx context.Context, me storage.User) ([]string, error) {
	if !me.Admin {
		names := append([]string{me.Name}, s.Policy.Owners(me)...)
		slices.Sort(names)
		return names, nil
	}
	names, err := s.Store.DataUsers(ctx)
	if err != nil {
		return nil, err
	}
	accounts, err := s.Accounts.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range accounts {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// lastFields are the members /api/0/last adds to each stored location.
func lastFields(m *storage.Message) []field {
	return append([]field{
		stringField("username", m.User),
		stringField("device", m.Device),
		stringField("topic", m.Topic),
	}, timeFields(m)...)
}

// visibleLast returns the last positions the caller may see, optionally
// for one user and device, coarsened where a share says so.
func (s *Server) visibleLast(ctx context.Context, me storage.User, user, device string) ([]storage.Message, error) {
	if user != "" && !s.Policy.CanSee(me, user) {
		return nil, nil
	}
	owners := []string{user}
	if user == "" && !me.Admin {
		owners = append([]string{me.Name}, s.Policy.Owners(me)...)
	}
	var out []storage.Message
	for _, owner := range owners {
		last, err := s.Store.LastLocations(ctx, owner, device)
		if err != nil {
			return nil, err
		}
		for i := range last {
			if m, ok := s.redact(me, &last[i]); ok {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// redact applies the viewer's grant to a message of someone else: nothing
// if there is none, coarsened if the share has a precision.
func (s *Server) redact(me storage.User, m *storage.Message) (storage.Message, bool) {
	g, ok := s.Policy.Grant(me, m.User, m.Device)
	if !ok {
		return storage.Message{}, false
	}
	out := *m
	if g.Precision > 0 {
		out.Payload, out.Lat, out.Lon = auth.Coarsen(m.Payload, m.Lat, m.Lon, g.Precision)
		if out.Payload == nil {
			return storage.Message{}, false
		}
	}
	return out, true
}

// last serves GET /api/0/last: a bare JSON array of last locations.
func (s *Server) last(c *echo.Context) error {
	user, device := strings.ToLower(param(c, "user")), strings.ToLower(param(c, "device"))
	last, err := s.visibleLast(c.Request().Context(), currentUser(c), user, device)
	if err != nil {
		return err
	}
	states, err := s.deviceStates(c.Request().Context(), last)
	if err != nil {
		return err
	}
	only := fieldSet(param(c, "fields"))
	buf := []byte{'['}
	for i := range last {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendObject(buf, last[i].Payload, append(lastFields(&last[i]), states.fields(&last[i])...), only)
	}
	buf = append(buf, ']')
	return c.JSONBlob(http.StatusOK, buf)
}

func fieldSet(v string) map[string]bool {
	if v == "" {
		return nil
	}
	set := map[string]bool{}
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			set[f] = true
		}
	}
	return set
}

// memoryReleaser is a store that can shrink its resident set.
type memoryReleaser interface{ ReleaseMemory() error }

// releaseAfter is the number of points after which a read releases memory.
const releaseAfter = 10000

// Output formats of /api/0/locations.
const (
	formatJSON    = "json"
	formatGeoJSON = "geojson"
)

// locations serves /api/0/locations for one device, streamed: memory stays
// flat however long the range.
func (s *Server) locations(c *echo.Context) error {
	me := currentUser(c)
	user, device := strings.ToLower(param(c, "user")), strings.ToLower(param(c, "device"))
	if user == "" || device == "" {
		return errBadRequest("user and device are required")
	}
	grant, ok := s.Policy.Grant(me, user, device)
	format := strings.ToLower(param(c, "format"))
	if format == "" {
		format = formatJSON
	}
	if !ok || !grant.History {
		if format == formatJSON || format == formatGeoJSON {
			// As the Recorder answers for a device without data: the
			// owntracks/frontend fetches every device it lists and drops
			// all tracks when one request fails.
			ok = false
		} else {
			return errForbidden
		}
	}
	from, to, err := timeRange(c, time.Now())
	if err != nil {
		return errBadRequest(err.Error())
	}
	q := storage.LocationQuery{User: user, Device: device, From: from.Unix(), To: to.Unix()}
	if v := param(c, "limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 0 {
			return errBadRequest("limit must be a whole number")
		}
	}
	if !ok {
		q.From, q.To = 1, 0 // an empty range: nothing to show
	}
	if format != formatJSON && format != formatGeoJSON || simplifying(c) {
		return s.exportLocations(c, me, grant, q, format) // export.go, formats*.go, simplify.go
	}
	only := fieldSet(param(c, "fields"))

	w := c.Response()
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(http.StatusOK)
	r := newTrackRenderer(format, only)
	add := func(m *storage.Message) error {
		if grant.Precision > 0 {
			coarse, ok := s.redact(me, m)
			if !ok {
				return nil
			}
			m = &coarse
		}
		r.add(m)
		return nil
	}
	ctx := c.Request().Context()
	if sc, ok := s.Store.(locationScanner); ok {
		err = sc.ScanLocations(ctx, q, add, func() error { return r.flush(w) })
	} else {
		err = s.Store.Locations(ctx, q, func(m *storage.Message) error {
			if add(m); len(r.buf) < renderFlushAt {
				return nil
			}
			return r.flush(w)
		})
	}
	if err != nil {
		// Headers are gone; a truncated body is the only signal left.
		if !errors.Is(err, context.Canceled) {
			s.Log.Error("locations stream failed", "user", user, "device", device, "error", err)
		}
		return nil
	}
	if rel, ok := s.Store.(memoryReleaser); ok && r.count > releaseAfter {
		defer rel.ReleaseMemory() // a long read mapped many pages; give them back
	}
	r.end(s.Version)
	return r.flush(w)
}
