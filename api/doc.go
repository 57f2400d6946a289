// Package api is wherehouse's HTTP side: the OwnTracks Recorder API under
// /api/0 and /ws/last (so owntracks/frontend and existing scripts work),
// health and metrics, MQTT over WebSocket at /mqtt, and the control socket
// the CLI uses while the server runs. routes.go is the table of contents.
package api
