package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/storage"
)

// canSee reports whether the caller may see owner's device, and whether
// exactly: regions (home, work…) are exact positions, so a share that
// coarsens positions does not show them. Every device endpoint asks here,
// so the visibility policy changes in one place.
func (s *Server) canSee(c *echo.Context, owner, device string) (ok, exact bool) {
	g, ok := s.Policy.Grant(currentUser(c), owner, device)
	return ok, ok && g.Precision == 0
}

var errCoarse = &apiError{Status: http.StatusForbidden, Code: "forbidden",
	Message: "this user shares only coarse positions with you; regions are exact"}

// Device status values of /api/0/last (a wherehouse extension).
const (
	statusOnline  = "online"
	statusOffline = "offline"
)

// deviceStates maps user/device to device state.
type deviceStates map[[2]string]storage.Device

// deviceStates loads the states of the devices in last with one store
// read: the one user's devices, or everyone's when last spans several.
func (s *Server) deviceStates(ctx context.Context, last []storage.Message) (deviceStates, error) {
	if s.Devices == nil || len(last) == 0 {
		return nil, nil
	}
	user := last[0].User
	for i := range last {
		if last[i].User != user {
			user = ""
			break
		}
	}
	list, err := s.Devices.ListDevices(ctx, user)
	if err != nil {
		return nil, err
	}
	states := make(deviceStates, len(list))
	for _, d := range list {
		states[[2]string{d.User, d.Device}] = d
	}
	return states, nil
}

// fields returns the members /api/0/last adds from m's device state: the
// card's name and face (as the Recorder merges them) and status.
func (ds deviceStates) fields(m *storage.Message) []field {
	d, ok := ds[[2]string{m.User, m.Device}]
	if !ok {
		return nil
	}
	return stateFields(&d)
}

// liveFields are the device members of a /ws/last frame for a location
// just stored. The frame is sent before the device state is written, and
// a location arriving means the device is online.
func (s *Server) liveFields(ctx context.Context, m *storage.Message) []field {
	if s.Devices == nil {
		return nil
	}
	d, err := s.Devices.Device(ctx, m.User, m.Device)
	if errors.Is(err, storage.ErrNotFound) {
		d = storage.Device{User: m.User, Device: m.Device}
	} else if err != nil {
		s.Log.Error("device state lookup failed", "user", m.User, "device", m.Device, "error", err)
		return nil
	}
	d.Online = true
	return stateFields(&d)
}

func stateFields(d *storage.Device) []field {
	var out []field
	for _, name := range []string{"name", "face"} {
		if r := gjson.GetBytes(d.Card, name); r.Type == gjson.String {
			out = append(out, field{name, []byte(r.Raw)})
		}
	}
	status := statusOffline
	if d.Online {
		status = statusOnline
	}
	return append(out, stringField("status", status))
}

// deviceJSON is a device in the /api/v1 answers.
type deviceJSON struct {
	User      string    `json:"user"`
	Device    string    `json:"device"`
	Online    bool      `json:"online"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Transport string    `json:"transport,omitempty"`
	TID       string    `json:"tid,omitempty"`
	Name      string    `json:"name,omitempty"`
}

// deviceDetail is one device with its card and regions.
type deviceDetail struct {
	deviceJSON
	Card      json.RawMessage `json:"card"`      // the card message, null if none
	Waypoints json.RawMessage `json:"waypoints"` // array of waypoint objects
}

// cardJSON is a card in GET /api/v1/cards.
type cardJSON struct {
	User   string `json:"user"`
	Device string `json:"device"`
	Name   string `json:"name,omitempty"`
	Face   string `json:"face,omitempty"` // base64 image
	TID    string `json:"tid,omitempty"`
}

func newDeviceJSON(d *storage.Device) deviceJSON {
	out := deviceJSON{
		User: d.User, Device: d.Device, Online: d.Online,
		Transport: d.Transport, TID: d.TID, Name: gjson.GetBytes(d.Card, "name").String(),
	}
	if d.LastSeen > 0 {
		out.LastSeen = time.UnixMilli(d.LastSeen).UTC()
	}
	return out
}

// waypointList returns the array of a waypoints payload, [] if none.
func waypointList(payload json.RawMessage) json.RawMessage {
	if r := gjson.GetBytes(payload, "waypoints"); r.IsArray() {
		return json.RawMessage(r.Raw)
	}
	return json.RawMessage("[]")
}

// visibleDevices returns the states of every device the caller may see.
// It reads all states and filters them through canSee, so shares of
// single devices apply; a home server has few devices.
func (s *Server) visibleDevices(c *echo.Context) ([]storage.Device, error) {
	if s.Devices == nil {
		return nil, nil
	}
	all, err := s.Devices.ListDevices(c.Request().Context(), "")
	if err != nil {
		return nil, err
	}
	visible := all[:0]
	for _, d := range all {
		if ok, _ := s.canSee(c, d.User, d.Device); ok {
			visible = append(visible, d)
		}
	}
	return visible, nil
}

// devices serves GET /api/v1/devices: the states of the devices the
// caller may see, ordered by user and device.
func (s *Server) devices(c *echo.Context) error {
	list, err := s.visibleDevices(c)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, 0, len(list))
	for i := range list {
		out = append(out, newDeviceJSON(&list[i]))
	}
	return c.JSON(http.StatusOK, out)
}

var errNoDevice = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such device"}

// device serves GET /api/v1/devices/:user/:device with the card and the
// regions. A device the caller may not see is a 404 like one that does not
// exist, so the answer does not tell who has which devices. Under a
// coarsening share the regions are left out ([]).
func (s *Server) device(c *echo.Context) error {
	user, device := pathParam(c, "user"), pathParam(c, "device")
	ok, exact := s.canSee(c, user, device)
	if !ok || s.Devices == nil {
		return errNoDevice
	}
	d, err := s.Devices.Device(c.Request().Context(), user, device)
	if errors.Is(err, storage.ErrNotFound) {
		return errNoDevice
	}
	if err != nil {
		return err
	}
	if !exact {
		d.Waypoints = nil
	}
	out := deviceDetail{deviceJSON: newDeviceJSON(&d), Card: d.Card, Waypoints: waypointList(d.Waypoints)}
	return c.JSON(http.StatusOK, out)
}

// cards serves GET /api/v1/cards: the cards of the devices the caller may
// see. The tid is the card's, else the device's newest.
func (s *Server) cards(c *echo.Context) error {
	list, err := s.visibleDevices(c)
	if err != nil {
		return err
	}
	out := []cardJSON{}
	for _, d := range list {
		if len(d.Card) == 0 {
			continue
		}
		r := gjson.GetManyBytes(d.Card, "name", "face", "tid")
		card := cardJSON{User: d.User, Device: d.Device, Name: r[0].String(), Face: r[1].String(), TID: r[2].String()}
		if card.TID == "" {
			card.TID = d.TID
		}
		out = append(out, card)
	}
	return c.JSON(http.StatusOK, out)
}

// waypoints serves GET /api/v1/waypoints?user=&device=: the device's
// current regions as an array of waypoint objects. user defaults to the
// caller. Like /api/0/locations, a device the caller may not see is a 403
// (so is one shared only coarsely); a device without regions (or without
// any state yet) gives [].
func (s *Server) waypoints(c *echo.Context) error {
	user, device := strings.ToLower(param(c, "user")), strings.ToLower(param(c, "device"))
	if user == "" {
		user = currentUser(c).Name
	}
	if device == "" {
		return errBadRequest("device is required")
	}
	ok, exact := s.canSee(c, user, device)
	if !ok {
		return errForbidden
	}
	if !exact {
		return errCoarse
	}
	if s.Devices == nil {
		return c.JSONBlob(http.StatusOK, []byte("[]"))
	}
	d, err := s.Devices.Device(c.Request().Context(), user, device)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return c.JSONBlob(http.StatusOK, waypointList(d.Waypoints))
}

// pathParam returns a lower-cased path parameter. echo leaves it escaped
// when the request path had escapes that differ from the default encoding.
func pathParam(c *echo.Context, name string) string {
	v := c.Param(name)
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
	}
	return strings.ToLower(v)
}
