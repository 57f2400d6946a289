package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/storage"
)

// EventStore is what the events API reads besides the engine.
type EventStore interface {
	storage.Events
	storage.Webhooks
}

// defaultEventWindow is how far back /api/v1/events looks without from.
const defaultEventWindow = 7 * 24 * time.Hour

// eventRange reads from/to; to defaults to now, from to a week before to.
func eventRange(c *echo.Context, now time.Time) (from, to time.Time, err error) {
	to = now
	if v := c.QueryParam("to"); v != "" {
		if to, err = parseTime(v, true); err != nil {
			return from, to, errBadRequest(err.Error())
		}
	}
	from = to.Add(-defaultEventWindow)
	if v := c.QueryParam("from"); v != "" {
		if from, err = parseTime(v, false); err != nil {
			return from, to, errBadRequest(err.Error())
		}
	}
	return from, to, nil
}

// listEvents serves GET /api/v1/events?user=&device=&from=&to=&limit=:
// enter/leave events in ascending time. user defaults to the caller; an
// admin may ask for user=* (everyone).
func (s *Server) listEvents(c *echo.Context) error {
	me := currentUser(c)
	user := strings.ToLower(c.QueryParam("user"))
	device := strings.ToLower(c.QueryParam("device"))
	switch {
	case user == "":
		user = me.Name
	case user == "*":
		if !me.Admin {
			return errForbidden
		}
		user, device = "", ""
	case !s.Policy.CanSee(me, user):
		return errForbidden
	}
	from, to, err := eventRange(c, time.Now())
	if err != nil {
		return err
	}
	limit := 0
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return errBadRequest("limit must be a positive number")
		}
	}
	q := storage.EventQuery{User: user, Device: device, From: from.Unix(), To: to.Unix(), Limit: limit}
	out := []events.Payload{}
	err = s.EventStore.Events(c.Request().Context(), q, func(ev *storage.Event) error {
		if s.Events.CanSee(me, ev.User, ev.Device) {
			out = append(out, events.NewPayload(*ev, ""))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// wsEvents serves /ws/events: every new event the caller may see, one JSON
// frame each, as delivered to webhooks.
func (s *Server) wsEvents(c *echo.Context) error {
	me := currentUser(c)
	conn, err := upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	defer conn.Close()
	updates, stop := s.Events.Hub().Subscribe()
	defer stop()
	client := wsRead(conn) // nothing to ask: only its close matters
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	ctx := c.Request().Context()
	for {
		select {
		case ev, ok := <-updates:
			if !ok {
				return nil
			}
			if !s.Events.CanSee(me, ev.User, ev.Device) {
				continue
			}
			tid := ""
			if s.Devices != nil {
				if d, err := s.Devices.Device(ctx, ev.User, ev.Device); err == nil {
					tid = d.TID
				}
			}
			conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := conn.WriteMessage(websocket.TextMessage, events.Marshal(ev, tid)); err != nil {
				return nil
			}
		case <-ping.C:
			if wsPing(conn) != nil {
				return nil
			}
		case _, ok := <-client:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return nil
		case <-s.quit:
			wsGoingAway(conn)
			return nil
		}
	}
}

// WebhookRequest is the body of POST /api/v1/webhooks.
type WebhookRequest struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"` // generated when empty
	Owner  string `json:"owner,omitempty"`  // admins only; default: the caller
}

// CheckWebhookURL says what is wrong with a webhook URL, or nil.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook url must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("put credentials in the secret, not the webhook url")
	}
	return nil
}

// NewWebhookSecret returns a random signing secret.
func NewWebhookSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// listWebhooks serves GET /api/v1/webhooks (secrets are not shown again).
func (s *Server) listWebhooks(c *echo.Context) error {
	me := currentUser(c)
	owner := me.Name
	if me.Admin {
		owner = strings.ToLower(c.QueryParam("owner"))
	}
	list, err := s.EventStore.ListWebhooks(c.Request().Context(), owner)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].Secret = ""
	}
	return c.JSON(http.StatusOK, list)
}

// addWebhook serves POST /api/v1/webhooks {"url":...}; the answer shows
// the signing secret, once.
func (s *Server) addWebhook(c *echo.Context) error {
	me := currentUser(c)
	var req WebhookRequest
	if err := c.Bind(&req); err != nil {
		return errBadRequest(`body must be JSON: {"url":"https://example.net/hook"}`)
	}
	owner := me.Name
	if o := strings.ToLower(req.Owner); o != "" && o != me.Name {
		if !me.Admin {
			return errForbidden
		}
		owner = o
	}
	w, err := NewWebhook(storage.Webhook{Owner: owner, URL: req.URL, Secret: req.Secret})
	if err != nil {
		return errBadRequest(err.Error())
	}
	if err := s.EventStore.PutWebhook(c.Request().Context(), w); err != nil {
		return err
	}
	s.Log.Info("webhook added", "webhook", w.ID, "owner", w.Owner, "by", me.Name)
	return c.JSON(http.StatusCreated, w)
}

// webhookOf loads webhook :id if the caller owns it (or is an admin).
func (s *Server) webhookOf(c *echo.Context) (storage.Webhook, error) {
	me := currentUser(c)
	w, err := s.EventStore.Webhook(c.Request().Context(), c.Param("id"))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !me.Admin && w.Owner != me.Name) {
		return w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such webhook"}
	}
	return w, err
}

// deleteWebhook serves DELETE /api/v1/webhooks/:id; pending deliveries go too.
func (s *Server) deleteWebhook(c *echo.Context) error {
	w, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	if err := s.EventStore.DeleteWebhook(c.Request().Context(), w.ID); err != nil {
		return err
	}
	s.Log.Info("webhook deleted", "webhook", w.ID, "owner", w.Owner, "by", currentUser(c).Name)
	return c.NoContent(http.StatusNoContent)
}

// webhookDeliveries serves GET /api/v1/webhooks/:id/deliveries: pending
// deliveries and the log of finished ones, newest first.
func (s *Server) webhookDeliveries(c *echo.Context) error {
	w, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	list, err := s.EventStore.Deliveries(c.Request().Context(), w.ID, storage.DeliveryLogSize)
	if err != nil {
		return err
	}
	type delivery struct {
		storage.Delivery
		Body json.RawMessage `json:"body"`
	}
	out := make([]delivery, 0, len(list))
	for _, d := range list {
		out = append(out, delivery{d, d.Body})
	}
	return c.JSON(http.StatusOK, out)
}
