package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/storage"
)

// Area queries: GET /api/v1/locations?bbox=W,S,E,N answers "where was
// anyone I may see inside this box, between these dates", from the
// store's spatial index, a page at a time.
const (
	areaDefaultLimit = 1000
	areaMaxLimit     = 10000
)

// areaLocations lists the locations inside bbox (west,south,east,north in
// degrees, GeoJSON's order; the whole world when absent) with from <= tst
// <= to (default: all of history), of the devices the caller has an exact
// history grant for, optionally only user's and device's. It answers in
// the shape of /api/0/locations (json or geojson) plus "next", the cursor
// of the following page, absent on the last.
func (s *Server) areaLocations(c *echo.Context) error {
	me := currentUser(c)
	q := storage.AreaQuery{MinLat: -90, MinLon: -180, MaxLat: 90, MaxLon: 180, From: 0, To: time.Now().Unix(), Limit: areaDefaultLimit}
	if v := param(c, "bbox"); v != "" {
		parts := strings.Split(v, ",")
		if len(parts) != 4 {
			return errBadRequest("bbox must be west,south,east,north in degrees, e.g. 13.37,52.50,13.42,52.53")
		}
		var box [4]float64
		for i, p := range parts {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil {
				return errBadRequest("bbox must be four numbers: west,south,east,north")
			}
			box[i] = f
		}
		q.MinLon, q.MinLat, q.MaxLon, q.MaxLat = box[0], box[1], box[2], box[3]
	}
	if err := givenRange(c, &q.From, &q.To); err != nil {
		return err
	}
	if v := param(c, "limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > areaMaxLimit {
			return errBadRequest("limit must be a whole number from 1 to " + strconv.Itoa(areaMaxLimit))
		}
		q.Limit = n
	}
	if v := param(c, "cursor"); v != "" {
		after, err := decodeCursor(v)
		if err != nil {
			return errBadRequest("cursor is not one this server handed out; start again without it")
		}
		q.After = after
	}
	if err := q.Check(); err != nil {
		return errBadRequest(err.Error())
	}
	format := strings.ToLower(param(c, "format"))
	if format == "" {
		format = formatJSON
	}
	if format != formatJSON && format != formatGeoJSON {
		return errBadRequest("format must be json or geojson")
	}
	user, device := strings.ToLower(param(c, "user")), strings.ToLower(param(c, "device"))
	q.Allow = func(u, d string) bool {
		if user != "" && u != user || device != "" && d != device {
			return false
		}
		// A coarse share never answers a box query: which boxes hold a
		// point would tell more than the share's precision.
		g, ok := s.Policy.Grant(me, u, d)
		return ok && g.History && g.Precision == 0
	}
	areas, ok := s.Store.(storage.Areas)
	if !ok {
		return echo.NewHTTPError(http.StatusNotImplemented, "this store has no spatial index")
	}
	r := newTrackRenderer(format, fieldSet(param(c, "fields")))
	next, err := areas.LocationsIn(c.Request().Context(), q, func(l *storage.StoredLocation) error {
		r.add(&l.Message)
		return nil
	})
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if next != nil {
		w.Header().Set("X-Wherehouse-Next", encodeCursor(next))
	}
	w.WriteHeader(http.StatusOK)
	r.endPage(s.Version, next)
	return r.flush(w)
}

func encodeCursor(c *storage.AreaCursor) string {
	b, _ := json.Marshal([]any{c.TST, c.User, c.Device, c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(v string) (*storage.AreaCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, err
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, err
	}
	if len(parts) != 4 {
		return nil, errors.New("cursor has the wrong length")
	}
	var c storage.AreaCursor
	for i, dst := range []any{&c.TST, &c.User, &c.Device, &c.ID} {
		if err := json.Unmarshal(parts[i], dst); err != nil {
			return nil, err
		}
	}
	return &c, nil
}
