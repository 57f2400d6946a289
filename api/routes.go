package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the table of contents of the HTTP API.
func (s *Server) routes(e *echo.Echo) {
	// No login: liveness and the version (as in the Recorder).
	e.GET("/healthz", s.healthz)
	e.GET("/api/0/version", s.version)

	// MQTT over WebSocket; MQTT's own CONNECT carries the credentials.
	if s.MQTT != nil {
		e.GET("/mqtt", echo.WrapHandler(s.MQTT))
	}

	// Everything else needs a login. (Middleware goes on prefixed groups
	// and single routes: on an empty-prefix group echo would add
	// catch-all routes that shadow the web app.)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{})), s.requireUser, s.requireAdmin)

	// Recorder-compatible API.
	r0 := e.Group("/api/0", s.requireUser)
	r0.GET("/list", s.list)
	r0.GET("/last", s.last)
	r0.GET("/locations", s.locations)
	r0.POST("/locations", s.locations) // the Recorder also takes form posts
	e.GET("/ws/last", s.wsLast, s.requireUser)

	// The apps' HTTP mode: one message per POST, never redirected. Basic
	// auth only: a browser's session cookie is no login for a device.
	e.POST("/pub", s.pub, s.requireBasic)

	// Web app logins (a cookie); logging in needs no login.
	if s.Sessions != nil {
		e.POST(sessionPath, s.login(newLoginLimiter(time.Now)))
		e.GET(sessionPath, s.getSession, s.requireUser)
		e.DELETE(sessionPath, s.logout, s.requireUser)
	}

	// Native API.
	v1 := e.Group("/api/v1", s.requireUser)
	v1.GET("/config", s.config)
	v1.PUT("/keys/:user/:device", s.setKey)
	v1.DELETE("/keys/:user/:device", s.deleteKey)
	v1.GET("/shares", s.listShares)
	v1.POST("/shares", s.addShare)
	v1.DELETE("/shares/:id", s.revokeShare)
	v1.GET("/groups", s.listGroups)
	v1.PUT("/groups/:name", s.putGroup, s.requireAdmin)
	v1.DELETE("/groups/:name", s.deleteGroup, s.requireAdmin)
	v1.GET("/devices", s.devices)
	v1.GET("/devices/:user/:device", s.device)
	v1.POST("/devices/:user/:device/cmd", s.sendCommand)
	v1.GET("/cards", s.cards)
	v1.GET("/waypoints", s.waypoints)
	v1.POST("/import", s.importUpload, s.requireAdmin) // import.go
	v1.GET("/locations", s.areaLocations)              // area.go
	if s.Events != nil {
		v1.GET("/fences", s.listFences)
		v1.POST("/fences", s.addFence)
		v1.GET("/fences/:id", s.getFence)
		v1.PUT("/fences/:id", s.putFence)
		v1.DELETE("/fences/:id", s.deleteFence)
		v1.GET("/fences/:id/occupants", s.occupants)
		v1.GET("/fences/:id/time", s.fenceTime)
		v1.GET("/events", s.listEvents)
		v1.GET("/webhooks", s.listWebhooks)
		v1.POST("/webhooks", s.addWebhook)
		v1.DELETE("/webhooks/:id", s.deleteWebhook)
		v1.GET("/webhooks/:id/deliveries", s.webhookDeliveries)
		e.GET("/ws/events", s.wsEvents, s.requireUser)
	}

	// Deleting and hiding history, retention (delete.go, retention.go).
	if s.Retention != nil {
		v1.GET("/retention", s.getRetention)
		v1.PUT("/retention", s.putRetention)
		v1.DELETE("/locations", s.deleteRange)
		v1.GET("/locations/hidden", s.hiddenLocations)
		v1.GET("/locations/:user/:device/:tst", s.locationsAt)
		v1.DELETE("/locations/:user/:device/:tst", s.deleteLocations)
		v1.POST("/locations/:user/:device/:tst/hide", s.hideLocations(true))
		v1.POST("/locations/:user/:device/:tst/unhide", s.hideLocations(false))
		v1.DELETE("/devices/:user/:device", s.deleteDevice)
		v1.DELETE("/users/:user/data", s.deleteUserData)
	}

	// The web app, or a page that says how to build it.
	if s.Frontend != nil {
		e.GET("/*", echo.WrapHandler(s.Frontend))
	}
	e.RouteNotFound("/*", func(*echo.Context) error { return errNotFound })
}

func (s *Server) healthz(c *echo.Context) error {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) version(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"version": s.Version})
}
