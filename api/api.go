package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/retention"
	"github.com/wherehouse/wherehouse/storage"
)

// Store is what the HTTP API reads.
type Store interface {
	storage.Messages
	storage.Last
}

// Deps are the API's collaborators.
type Deps struct {
	Store    Store
	Devices  storage.Devices // device states (card, regions, online); nil for none
	Accounts *auth.Accounts
	Policy   *auth.Policy // who sees whom (shares, groups)
	Live     *recorder.Live
	Version  string
	Log      *slog.Logger
	Gatherer prometheus.Gatherer
	MQTT     http.Handler // MQTT over WebSocket; nil when the embedded broker is off
	Frontend http.Handler // the web app; nil for none
	Ready    func() error // nil error when the server can take traffic

	// HTTP mode (/pub) and device commands.
	Recorder  *recorder.Recorder // stores what /pub receives
	Secrets   *auth.Secrets      // encrypts /pub replies to encrypted requests; nil for none
	Commands  storage.Commands   // cmds queued for devices in HTTP mode; nil for none
	Publisher Publisher          // publishes cmds to the broker; nil without one

	// Geofences and events.
	Events     *events.Engine // evaluates fences; nil disables the fence and event API
	Fences     storage.Fences
	EventStore EventStore

	// Deleting and hiding history, retention policies; nil disables them.
	Retention *retention.Manager

	// Importer takes uploaded history (POST /api/v1/import); nil disables it.
	Importer *importer.Importer

	// The web app: its logins and what GET /api/v1/config tells it.
	Sessions        storage.Sessions // web logins; nil disables /api/v1/session (basic auth only)
	TileURL         string           // map tile URL template, {z}/{x}/{y}
	TileAttribution string           // HTML shown with the tiles
	EventTopic      string           // MQTT prefix of fence events as JSON; "" when off
}

// Server holds the HTTP handlers.
type Server struct {
	Deps
	handler   http.Handler
	quit      chan struct{} // closed by Close: ends WebSockets
	closeOnce sync.Once

	pollMu   sync.Mutex
	lastPoll map[[2]string]int64 // HTTP-mode device -> when its last reply was built, UNIX ms
}

// New returns the HTTP API.
func New(d Deps) *Server {
	s := &Server{Deps: d, quit: make(chan struct{})}
	e := echo.New()
	e.HTTPErrorHandler = s.handleError
	s.routes(e)
	s.handler = e
	return s
}

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close ends long-lived connections (WebSockets), which http.Server's
// Shutdown does not wait for or close.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.quit) }) }

// apiError is an error with a status and a stable code for clients. Its
// message is safe to show; internal errors never reach the client.
type apiError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *apiError) Error() string { return e.Message }

func errBadRequest(msg string) error {
	return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
}

var (
	errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "login required: use HTTP basic auth with your wherehouse user name and password"}
	errForbidden = &apiError{Status: http.StatusForbidden, Code: "forbidden",
		Message: "you may not see this user's data"}
	errNotFound = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint"}
)

// statusCode is a stable error code for an HTTP status: "not_found".
func statusCode(status int) string {
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

// handleError renders every error as JSON (the Recorder frontend parses
// every response as JSON, so even a 404 must be JSON).
func (s *Server) handleError(c *echo.Context, err error) {
	if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
		return
	}
	var ae *apiError
	var he *echo.HTTPError
	var sc echo.HTTPStatusCoder
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = &apiError{Status: he.Code, Code: statusCode(he.Code), Message: he.Message}
		if ae.Message == "" {
			ae.Message = http.StatusText(he.Code)
		}
	case errors.As(err, &sc) && sc.StatusCode() >= 400 && sc.StatusCode() < 500:
		ae = &apiError{Status: sc.StatusCode(), Code: statusCode(sc.StatusCode()), Message: http.StatusText(sc.StatusCode())}
	default:
		s.Log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "error", err)
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has details"}
	}
	if ae.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="wherehouse", charset="UTF-8"`)
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(ae.Status)
		return
	}
	c.JSON(ae.Status, ae)
}
