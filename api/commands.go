package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/recorder"
)

// cmd actions the OwnTracks apps know (PROTOCOL.md, Message types).
const (
	cmdReportLocation   = "reportLocation"
	cmdDump             = "dump"
	cmdStatus           = "status"
	cmdSetWaypoints     = "setWaypoints"
	cmdSetConfiguration = "setConfiguration"
	cmdClearWaypoints   = "clearWaypoints"
)

// cmdActions are the actions POST .../cmd accepts.
var cmdActions = map[string]bool{
	cmdReportLocation: true, cmdDump: true, cmdStatus: true,
	cmdSetWaypoints: true, cmdSetConfiguration: true, cmdClearWaypoints: true,
}

// Delivery of commands.
const (
	// cmdTTL is how long a command waits for a device in HTTP mode to
	// post: a stale "reportLocation" is worse than none.
	cmdTTL = 24 * time.Hour
	// cmdQoS: at least once, as the apps subscribe to their cmd topic.
	cmdQoS = 1
	// maxCmdBody bounds a command (setConfiguration and setWaypoints
	// carry the most).
	maxCmdBody = recorder.MaxPayload
)

// cmdResult is the answer of POST .../cmd.
type cmdResult struct {
	Published bool `json:"published"` // sent to the device's cmd topic on the broker
	Queued    bool `json:"queued"`    // kept for the device's next /pub (HTTP mode)
}

var errCmdBody = errBadRequest(`body must be a JSON object like {"action":"reportLocation"}; actions: ` +
	"reportLocation, dump, status, setWaypoints (with waypoints), setConfiguration (with configuration), clearWaypoints")

// sendCommand serves POST /api/v1/devices/:user/:device/cmd: an OwnTracks
// cmd for one device, published on owntracks/<user>/<device>/cmd (MQTT
// mode) and queued for the device's next /pub reply (HTTP mode). Only the
// owner and admins may command a device. iOS ignores commands unless
// "cmd" is enabled in its settings; Android has no "dump".
func (s *Server) sendCommand(c *echo.Context) error {
	me := currentUser(c)
	user, device := pathParam(c, "user"), pathParam(c, "device")
	if !topicLevel(user) || !topicLevel(device) {
		return errPubName
	}
	if user != me.Name && !me.Admin {
		return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "only the device's owner or an admin may send it commands"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxCmdBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "command too large"}
	}
	if err != nil {
		return errBadRequest("cannot read the request body")
	}
	payload, err := parseCommand(body)
	if err != nil {
		return err
	}

	ctx := c.Request().Context()
	topic := recorder.TopicPrefix + "/" + user + "/" + device + "/cmd"
	var res cmdResult
	if s.Publisher != nil {
		// The server's own publishes are not ingested: the embedded
		// broker's inline client bypasses the ingest hook, and the external
		// client skips .../cmd topics.
		if err := s.Publisher.Publish(topic, payload, false, cmdQoS); err != nil {
			s.Log.Warn("cmd not published", "user", user, "device", device, "topic", topic, "error", err)
		} else {
			res.Published = true
		}
	}
	if s.Commands != nil {
		if err := s.Commands.QueueCommand(ctx, user, device, payload, cmdTTL); err != nil {
			return err
		}
		res.Queued = true
	}
	s.Log.Info("cmd sent", "user", user, "device", device, "action", gjson.GetBytes(payload, "action").String(),
		"published", res.Published, "queued", res.Queued, "by", me.Name)
	return c.JSON(http.StatusAccepted, res)
}

// parseCommand validates a cmd and returns it with _type "cmd".
// setWaypoints takes waypoints as the apps' {"_type":"waypoints",
// "waypoints":[...]} object or as the bare array, which is wrapped;
// setConfiguration's configuration gets _type "configuration" if missing.
func parseCommand(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, errCmdBody
	}
	if t, ok := m["_type"]; ok && string(bytes.TrimSpace(t)) != `"cmd"` {
		return nil, errBadRequest(`_type must be "cmd" (or left out)`)
	}
	var action string
	if err := json.Unmarshal(m["action"], &action); err != nil || !cmdActions[action] {
		return nil, errCmdBody
	}
	m["_type"] = json.RawMessage(`"cmd"`)
	switch action {
	case cmdSetWaypoints:
		w, err := waypointsObject(m["waypoints"])
		if err != nil {
			return nil, err
		}
		m["waypoints"] = w
	case cmdSetConfiguration:
		conf, err := typedObject(m["configuration"], "configuration")
		if err != nil {
			return nil, errBadRequest("setConfiguration needs a configuration object")
		}
		m["configuration"] = conf
	}
	return json.Marshal(m)
}

// waypointsObject returns a setWaypoints cmd's waypoints as a waypoints
// message: {"_type":"waypoints","waypoints":[...]}.
func waypointsObject(raw json.RawMessage) (json.RawMessage, error) {
	errWaypoints := errBadRequest(`setWaypoints needs waypoints: [{"desc":...,"lat":...,"lon":...,"rad":...,"tst":...}] or {"_type":"waypoints","waypoints":[...]}`)
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && list != nil {
		return json.Marshal(map[string]any{"_type": "waypoints", "waypoints": list})
	}
	obj, err := typedObject(raw, "waypoints")
	if err != nil {
		return nil, errWaypoints
	}
	var w struct {
		Waypoints []json.RawMessage `json:"waypoints"`
	}
	if json.Unmarshal(obj, &w) != nil || w.Waypoints == nil {
		return nil, errWaypoints
	}
	return obj, nil
}

// typedObject checks raw is a JSON object and sets its _type if missing.
func typedObject(raw json.RawMessage, typ string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("not an object")
	}
	if _, ok := m["_type"]; !ok {
		m["_type"], _ = json.Marshal(typ)
	}
	return json.Marshal(m)
}
