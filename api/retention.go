package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
)

// RetentionJSON is a retention policy as /api/v1/retention shows it. The
// ages are seconds (0: never); a PUT also takes them as text ("365d",
// "30d", "5m").
type RetentionJSON struct {
	User        string    `json:"user"`
	Keep        bool      `json:"keep"`         // keeps everything: nothing deleted or thinned
	DeleteAfter int64     `json:"delete_after"` // messages and events older than this are deleted
	ThinAfter   int64     `json:"thin_after"`   // locations older than this are thinned...
	ThinTo      int64     `json:"thin_to"`      // ...to the first of each interval this long, per device
	Description string    `json:"description"`  // in words
	Updated     time.Time `json:"updated,omitzero"`
}

// NewRetentionJSON describes p.
func NewRetentionJSON(p storage.RetentionPolicy) RetentionJSON {
	return RetentionJSON{
		User: p.User, Keep: p.Keep(), DeleteAfter: p.DeleteAfter, ThinAfter: p.ThinAfter, ThinTo: p.ThinTo,
		Description: retention.Describe(p), Updated: p.Updated,
	}
}

// retentionRequest is the body of PUT /api/v1/retention. It replaces the
// policy: members left out are 0, so {} (or {"keep":true}) keeps
// everything.
type retentionRequest struct {
	Keep        bool            `json:"keep"`
	DeleteAfter json.RawMessage `json:"delete_after"`
	ThinAfter   json.RawMessage `json:"thin_after"`
	ThinTo      json.RawMessage `json:"thin_to"`
}

// seconds reads an age: a number of seconds or a duration as text.
func seconds(name string, raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return 0, fmt.Errorf("%s: want seconds or a duration like \"365d\"", name)
	}
	if text == "" {
		return 0, nil
	}
	d, err := retention.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return int64(d.Seconds()), nil
}

// retentionUser is whose policy a request is about: ?user= or the caller.
// Only admins may name someone else.
func retentionUser(c *echo.Context) (string, error) {
	me := currentUser(c)
	user := strings.ToLower(param(c, "user"))
	if user == "" || user == me.Name {
		return me.Name, nil
	}
	if !me.Admin {
		return "", &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "only admins may see or set someone else's retention policy"}
	}
	return user, nil
}

// getRetention serves GET /api/v1/retention[?user=].
func (s *Server) getRetention(c *echo.Context) error {
	user, err := retentionUser(c)
	if err != nil {
		return err
	}
	p, err := s.Retention.Policy(c.Request().Context(), user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, NewRetentionJSON(p))
}

// maxRetentionBody bounds the body of PUT /api/v1/retention.
const maxRetentionBody = 4 << 10

// putRetention serves PUT /api/v1/retention[?user=]: it replaces the
// policy, which is applied within seconds.
func (s *Server) putRetention(c *echo.Context) error {
	user, err := retentionUser(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxRetentionBody))
	if err != nil {
		return errBadRequest("body too large")
	}
	var req retentionRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return errBadRequest(`body must be JSON like {"delete_after":"365d"}, {"thin_after":"30d","thin_to":"5m"} or {"keep":true}: ` + err.Error())
		}
	}
	p := storage.RetentionPolicy{User: user}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int64
	}{{"delete_after", req.DeleteAfter, &p.DeleteAfter}, {"thin_after", req.ThinAfter, &p.ThinAfter}, {"thin_to", req.ThinTo, &p.ThinTo}} {
		if *f.dst, err = seconds(f.name, f.raw); err != nil {
			return errBadRequest(err.Error())
		}
	}
	if req.Keep && !p.Keep() {
		return errBadRequest("keep cannot go with delete_after or thin_after")
	}
	p, err = s.Retention.SetPolicy(c.Request().Context(), p)
	if errors.Is(err, retention.ErrInvalid) {
		return errBadRequest(err.Error())
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, NewRetentionJSON(p))
}
