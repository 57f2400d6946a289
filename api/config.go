package api

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// webConfig is what the web app needs to know about the server.
type webConfig struct {
	TileURL         string `json:"tile_url"`
	TileAttribution string `json:"tile_attribution"`
	Version         string `json:"version"`
	EventTopic      string `json:"event_topic"` // "" when events are not published on MQTT
}

// config serves GET /api/v1/config.
func (s *Server) config(c *echo.Context) error {
	return c.JSON(http.StatusOK, webConfig{
		TileURL:         s.TileURL,
		TileAttribution: s.TileAttribution,
		Version:         s.Version,
		EventTopic:      s.EventTopic,
	})
}
