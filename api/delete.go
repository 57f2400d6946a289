package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/storage"
)

// Deleting and hiding history. Only the owner and admins may: a viewer,
// even one allowed the history, gets a 403 for a device they can see and a
// 404 for one they cannot (so the answer does not tell who has which
// devices).

var (
	errNotOwner = &apiError{Status: http.StatusForbidden, Code: "forbidden",
		Message: "only the owner or an admin may delete or hide this data"}
	errNoLocation = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such location"}
	errNoData     = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no data stored for this user"}
)

// mayChange returns nil when the caller may delete or hide owner's data
// (of device, or of every device for ""), else the error to answer.
func (s *Server) mayChange(c *echo.Context, owner, device string) error {
	me := currentUser(c)
	if me.Admin || me.Name == owner {
		return nil
	}
	if device != "" {
		if ok, _ := s.canSee(c, owner, device); !ok {
			return errNoDevice
		}
	}
	return errNotOwner
}

// deleteAnswer is the body of a successful deletion.
type deleteAnswer struct {
	Deleted storage.Deleted `json:"deleted"`
}

// deleteRange serves DELETE /api/v1/locations?user=&device=&from=&to=:
// every message of the device with from <= tst <= to (locations, hidden or
// not, and every other type) and its fence events in that range. from and
// to are required: a deletion has no default window.
func (s *Server) deleteRange(c *echo.Context) error {
	user, device := strings.ToLower(param(c, "user")), strings.ToLower(param(c, "device"))
	if user == "" {
		user = currentUser(c).Name
	}
	if device == "" {
		return errBadRequest("device is required")
	}
	fromV, toV := param(c, "from"), param(c, "to")
	if fromV == "" || toV == "" {
		return errBadRequest("from and to are required (a deletion has no default range)")
	}
	from, err := parseTime(fromV, false)
	if err != nil {
		return errBadRequest(err.Error())
	}
	to, err := parseTime(toV, true)
	if err != nil {
		return errBadRequest(err.Error())
	}
	if from.After(to) {
		return errBadRequest("from is after to")
	}
	if err := s.mayChange(c, user, device); err != nil {
		return err
	}
	n, err := s.Retention.DeleteRange(c.Request().Context(), user, device, from.Unix(), to.Unix())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deleteAnswer{n})
}

// pointParams reads and authorises the user, device and tst of the
// /api/v1/locations/:user/:device/:tst routes.
func (s *Server) pointParams(c *echo.Context) (user, device string, tst int64, err error) {
	user, device = pathParam(c, "user"), pathParam(c, "device")
	v := c.Param("tst")
	if tst, err = strconv.ParseInt(v, 10, 64); err != nil {
		t, perr := parseTime(v, false)
		if perr != nil {
			return "", "", 0, errBadRequest("tst must be UNIX seconds")
		}
		tst, err = t.Unix(), nil
	}
	return user, device, tst, s.mayChange(c, user, device)
}

// storedLocationJSON is a location in GET /api/v1/locations/:user/:device/:tst
// and /api/v1/locations/hidden.
type storedLocationJSON struct {
	ID       string          `json:"id"` // tells apart locations of one tst: ?id= of DELETE, hide and unhide
	TST      int64           `json:"tst"`
	Hidden   bool            `json:"hidden"`
	Received time.Time       `json:"isorcv"`
	Payload  json.RawMessage `json:"payload"`
}

func newStoredLocationJSON(l *storage.StoredLocation) storedLocationJSON {
	return storedLocationJSON{ID: l.ID, TST: l.TST, Hidden: l.Hidden, Received: l.ReceivedTime(), Payload: l.Payload}
}

// locationsAt serves GET /api/v1/locations/:user/:device/:tst: every
// location at that tst, hidden ones included, with their IDs.
func (s *Server) locationsAt(c *echo.Context) error {
	user, device, tst, err := s.pointParams(c)
	if err != nil {
		return err
	}
	list, err := s.Retention.LocationsAt(c.Request().Context(), user, device, tst)
	if err != nil {
		return err
	}
	out := make([]storedLocationJSON, 0, len(list))
	for i := range list {
		out = append(out, newStoredLocationJSON(&list[i]))
	}
	return c.JSON(http.StatusOK, out)
}

// deleteLocations serves DELETE /api/v1/locations/:user/:device/:tst: the
// locations at that tst, hidden or not (all of them, or with ?id= one).
// Other message types at that tst stay.
func (s *Server) deleteLocations(c *echo.Context) error {
	user, device, tst, err := s.pointParams(c)
	if err != nil {
		return err
	}
	n, err := s.Retention.DeleteLocations(c.Request().Context(), user, device, tst, c.QueryParam("id"))
	if errors.Is(err, storage.ErrNotFound) {
		return errNoLocation
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deleteAnswer{storage.Deleted{Locations: n}})
}

// hideLocations serves POST /api/v1/locations/:user/:device/:tst/hide and
// /unhide (all locations at that tst, or with ?id= one). A hidden location
// is kept but left out of /api/0/locations, /api/0/last, exports and the
// map.
func (s *Server) hideLocations(hidden bool) echo.HandlerFunc {
	return func(c *echo.Context) error {
		user, device, tst, err := s.pointParams(c)
		if err != nil {
			return err
		}
		n, err := s.Retention.HideLocations(c.Request().Context(), user, device, tst, c.QueryParam("id"), hidden)
		if errors.Is(err, storage.ErrNotFound) {
			return errNoLocation
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]int{"changed": n})
	}
}

// hiddenLocations serves GET /api/v1/locations/hidden?user=&device=&from=&to=:
// the hidden locations of a device (default: all time), so they can be
// shown again.
func (s *Server) hiddenLocations(c *echo.Context) error {
	user, device := strings.ToLower(param(c, "user")), strings.ToLower(param(c, "device"))
	if user == "" {
		user = currentUser(c).Name
	}
	if device == "" {
		return errBadRequest("device is required")
	}
	q := storage.LocationQuery{User: user, Device: device, From: 0, To: maxQueryTST}
	if err := givenRange(c, &q.From, &q.To); err != nil {
		return err
	}
	if err := s.mayChange(c, user, device); err != nil {
		return err
	}
	out := []storedLocationJSON{}
	err := s.Retention.HiddenLocations(c.Request().Context(), q, func(l *storage.StoredLocation) error {
		out = append(out, newStoredLocationJSON(l))
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// maxQueryTST is "no upper bound" for a time range.
const maxQueryTST = 1 << 62

// deleteDevice serves DELETE /api/v1/devices/:user/:device: its history,
// last position, state, queued commands, fence states and events.
func (s *Server) deleteDevice(c *echo.Context) error {
	user, device := pathParam(c, "user"), pathParam(c, "device")
	if err := s.mayChange(c, user, device); err != nil {
		return err
	}
	n, err := s.Retention.DeleteDevice(c.Request().Context(), user, device)
	if errors.Is(err, storage.ErrNotFound) {
		return errNoDevice
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deleteAnswer{n})
}

// deleteUserData serves DELETE /api/v1/users/:user/data: what
// DELETE /api/v1/devices/:user/:device deletes, for every device of the
// user. The account and its settings (shares, fences, webhooks, secrets,
// retention policy) stay.
func (s *Server) deleteUserData(c *echo.Context) error {
	user := pathParam(c, "user")
	if err := s.mayChange(c, user, ""); err != nil {
		return err
	}
	n, err := s.Retention.DeleteUserData(c.Request().Context(), user, false)
	if errors.Is(err, storage.ErrNotFound) {
		return errNoData
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deleteAnswer{n})
}
