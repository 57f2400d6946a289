package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v5"
	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/crypto"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// Publisher publishes a message from the server itself to the MQTT broker,
// embedded or external. Its messages are not ingested as device messages.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// maxPubBody is the largest /pub body accepted: the recorder's payload limit.
const maxPubBody = recorder.MaxPayload

var (
	errPubTooLarge = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
		Message: "message is over the " + strconv.Itoa(maxPubBody>>10) + " KiB limit"}
	errPubNoDevice = errBadRequest("no device id: set the Device ID in the app (sent as the X-Limit-D header or ?d=)")
	errPubName     = errBadRequest("user and device ids must be 1 to 128 characters without / + # or control characters")
	// Transient trouble gets a 5xx: the apps retry it (iOS drops a 4xx).
	errPubUnavailable = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: "the message could not be stored now; the app will send it again"}
)

// pubSubtopics are the topic levels the apps publish these types under in
// MQTT mode (PROTOCOL.md, Topics); HTTP-mode messages are stored under the
// same topics so both modes look alike in history and exports.
var pubSubtopics = map[string]string{
	"transition": "/event",
	"card":       "/info",
	"waypoint":   "/waypoint",
	"waypoints":  "/waypoints",
}

// pub serves POST /pub, the apps' HTTP mode: store the message, answer 2xx
// only once it is durable, and reply with what the app would get over MQTT
// (friends' locations and cards, queued commands). The Android app parses
// the reply all-or-nothing and retries any non-2xx; iOS drops a message on
// a 4xx. So 4xx means "never acceptable", 5xx "try again", and /pub never
// redirects.
func (s *Server) pub(c *echo.Context) error {
	ctx := c.Request().Context()
	me := currentUser(c)
	user, device, err := pubIdentity(c, me)
	if err != nil {
		return err
	}
	if user != me.Name && !me.Admin {
		return &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "logged in as " + me.Name + " but posting as " + user + ": set the app's user id (X-Limit-U) to your login name"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxPubBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errPubTooLarge
	}
	if err != nil {
		return errBadRequest("cannot read the request body")
	}

	typ := gjson.GetBytes(body, "_type").String()
	encrypted := crypto.IsEncrypted(body)
	var key *[crypto.KeySize]byte
	if encrypted {
		typ, key = s.peekEncrypted(ctx, user, device, body)
	}
	topic := recorder.TopicPrefix + "/" + user + "/" + device + pubSubtopics[typ]
	stored, err := s.Recorder.StoreMessage(ctx, recorder.Incoming{Topic: topic, Payload: body, Transport: "http", Received: time.Now()})
	if errors.Is(err, recorder.ErrInvalid) {
		// The recorder has logged and counted the reason.
		return errBadRequest("message rejected: " + err.Error())
	}
	if err != nil {
		s.Log.Warn("http message not stored", "user", user, "device", device, "error", err)
		return errPubUnavailable
	}

	// Pass it on to MQTT subscribers (friends' apps in MQTT mode), decrypted
	// like every relay; locations retained as the apps publish them.
	if s.Publisher != nil {
		if err := s.Publisher.Publish(topic, stored.Payload, stored.IsLocation(), 1); err != nil {
			s.Log.Debug("http message not relayed to mqtt", "topic", topic, "error", err)
		}
	}

	viewer, err := s.pubViewer(ctx, me, user)
	if err != nil {
		return err
	}
	reply, err := s.pubReply(ctx, viewer, user, device, isAndroid(c.Request()))
	if err != nil {
		return err
	}
	if !encrypted {
		return c.JSONBlob(http.StatusOK, reply)
	}
	sealed, err := s.sealReply(ctx, user, device, key, reply)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, sealed)
}

// pubIdentity returns who posts: user and device from the X-Limit-U and
// X-Limit-D headers, else the u and d query parameters; the user defaults
// to the login name. Both are lower-cased as everywhere else.
func pubIdentity(c *echo.Context, me storage.User) (user, device string, err error) {
	h := c.Request().Header
	user = firstSet(h.Get("X-Limit-U"), c.QueryParam("u"), me.Name)
	device = firstSet(h.Get("X-Limit-D"), c.QueryParam("d"))
	user, device = strings.ToLower(strings.TrimSpace(user)), strings.ToLower(strings.TrimSpace(device))
	if device == "" {
		return "", "", errPubNoDevice
	}
	if !topicLevel(user) || !topicLevel(device) {
		return "", "", errPubName
	}
	return user, device, nil
}

// firstSet returns the first non-empty string.
func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// topicLevel reports whether v can be one level of an MQTT topic: a "/"
// would shift the device into the subtopic.
func topicLevel(v string) bool {
	if v == "" || len(v) > 128 || !utf8.ValidString(v) {
		return false
	}
	return !strings.ContainsFunc(v, func(r rune) bool { return r == '/' || r == '+' || r == '#' || r < ' ' || r == 0x7f })
}

// peekEncrypted decrypts an encrypted request to learn its _type (for the
// topic) and which of the secret's keys opened it (to seal the reply with
// the same one: iOS and Android derive different keys from some long
// secrets). It returns "" and nil when it cannot; the recorder then rejects
// the message with the reason.
func (s *Server) peekEncrypted(ctx context.Context, user, device string, body []byte) (string, *[crypto.KeySize]byte) {
	if s.Secrets == nil {
		return "", nil
	}
	secret, err := s.Secrets.Secret(ctx, user, device)
	if err != nil {
		return "", nil
	}
	data := gjson.GetBytes(body, "data").String()
	for _, k := range crypto.Keys(secret) {
		if plain, err := crypto.Open(data, k); err == nil {
			return gjson.GetBytes(plain, "_type").String(), &k
		}
	}
	return "", nil
}

// sealReply encrypts the whole reply array into one bare encrypted object:
// iOS ignores an array of encrypted objects.
func (s *Server) sealReply(ctx context.Context, user, device string, key *[crypto.KeySize]byte, reply []byte) ([]byte, error) {
	if key == nil {
		// The secret changed between peeking and storing; use the new one.
		secret, err := s.Secrets.Secret(ctx, user, device)
		if err != nil {
			return nil, err
		}
		k := crypto.KeyFromSecret(secret)
		key = &k
	}
	data, err := crypto.Seal(reply, *key)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Type string `json:"_type"`
		Data string `json:"data"`
	}{"encrypted", data})
}

// pubViewer is the account whose friends the reply shows: the user posted
// as, which is the caller unless an admin posts for someone else.
func (s *Server) pubViewer(ctx context.Context, me storage.User, user string) (storage.User, error) {
	if user == me.Name {
		return me, nil
	}
	u, err := s.Accounts.Get(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{Name: user}, nil
	}
	return u, err
}

// isAndroid tells the Android app by its User-Agent
// ("Owntracks-Android/<flavor>/<version>").
func isAndroid(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.UserAgent()), "owntracks-android")
}

// pubReply builds the /pub reply array for viewer's device: the last
// location of every device of others viewer may see, their cards, then
// the device's queued commands.
func (s *Server) pubReply(ctx context.Context, viewer storage.User, user, device string, android bool) ([]byte, error) {
	friends, err := s.friendLocations(ctx, viewer)
	if err != nil {
		return nil, err
	}
	states, err := s.deviceStates(ctx, friends)
	if err != nil {
		return nil, err
	}
	tids := assignTIDs(friends, states)
	buf := []byte{'['}
	add := func(elem []byte) {
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, elem...)
	}
	for i := range friends {
		m := &friends[i]
		payload, ok := androidSafeLocation(m)
		if !ok {
			continue
		}
		topic := recorder.TopicPrefix + "/" + m.User + "/" + m.Device
		add(appendObject(nil, payload, []field{stringField("tid", tids[i]), stringField("topic", topic)}, nil))
	}
	for i := range friends {
		d := states[[2]string{friends[i].User, friends[i].Device}]
		if card := friendCard(d.Card, tids[i]); card != nil {
			add(card)
		}
	}
	transitions, err := s.friendTransitions(ctx, viewer, user, device, friends, tids)
	if err != nil {
		return nil, err
	}
	for _, t := range transitions {
		add(t)
	}
	if s.Commands != nil {
		cmds, err := s.Commands.TakeCommands(ctx, user, device)
		if err != nil {
			return nil, err
		}
		for _, cmd := range cmds {
			action := gjson.GetBytes(cmd, "action").String()
			if android && !androidActions[action] {
				// One element Android cannot parse discards the whole reply.
				s.Log.Info("cmd not delivered: the Android app does not know it", "user", user, "device", device, "action", action)
				continue
			}
			add(cmd)
		}
	}
	return append(buf, ']'), nil
}

// friendLocations returns the last locations viewer may see of other
// users' devices, coarsened as their shares say, ordered by user and
// device. The viewer's own devices are left out: the apps would show them
// as a friend.
func (s *Server) friendLocations(ctx context.Context, viewer storage.User) ([]storage.Message, error) {
	var owners []string
	if viewer.Admin {
		var err error
		if owners, err = s.Store.DataUsers(ctx); err != nil {
			return nil, err
		}
	} else {
		owners = s.Policy.Owners(viewer)
	}
	var out []storage.Message
	for _, owner := range owners {
		if owner == viewer.Name {
			continue
		}
		last, err := s.Store.LastLocations(ctx, owner, "")
		if err != nil {
			return nil, err
		}
		for i := range last {
			if m, ok := s.redact(viewer, &last[i]); ok {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// assignTIDs gives each friend a tracker id unique within the reply: the
// apps key friends by it (Android turns it into the pseudo-topic
// owntracks/http/<tid>). A friend keeps their own tid (the location's,
// else the card's, else the device name's last two characters, as the
// Recorder does) unless someone earlier in the list has it; then one is
// derived from their names. Comparison ignores case: "PH" and "ph" look
// the same on a map.
func assignTIDs(friends []storage.Message, states deviceStates) []string {
	used := map[string]bool{}
	out := make([]string, len(friends))
	for i := range friends {
		m := &friends[i]
		own := gjson.GetBytes(m.Payload, "tid").String()
		if own == "" {
			d := states[[2]string{m.User, m.Device}]
			own = firstSet(gjson.GetBytes(d.Card, "tid").String(), d.TID, lastRunes(m.Device, 2))
		}
		for _, cand := range tidCandidates(own, m.User, m.Device) {
			if cand != "" && !used[strings.ToLower(cand)] {
				out[i] = cand
				used[strings.ToLower(cand)] = true
				break
			}
		}
	}
	return out
}

// tidCandidates lists tids to try in order, ending with every two-character
// combination of digits and letters (more than any reply will need).
func tidCandidates(own, user, device string) []string {
	c := []string{
		own,
		firstRunes(device, 2),
		firstRunes(user, 1) + firstRunes(device, 1),
		lastRunes(device, 2),
		firstRunes(user, 2),
	}
	const alnum = "0123456789abcdefghijklmnopqrstuvwxyz"
	for _, a := range firstRunes(user, 1) + alnum {
		for _, b := range alnum {
			c = append(c, string(a)+string(b))
		}
	}
	return c
}

func firstRunes(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}

func lastRunes(s string, n int) string {
	r := []rune(s)
	return string(r[max(0, len(r)-n):])
}

// androidInts are location members the Android app decodes as integers; a
// fraction or a string in any of them makes it discard the whole reply.
var androidInts = []string{"tst", "created_at", "batt", "acc", "alt", "vac", "vel", "cog", "bs"}

// androidSafeLocation returns m's payload with every member in androidInts
// an integer: tst is the stored fix time, other numbers are rounded, and
// anything else is dropped. A location without a positive tst (Android
// rejects tst 0) is left out.
func androidSafeLocation(m *storage.Message) ([]byte, bool) {
	if m.TST <= 0 || gjson.GetBytes(m.Payload, "_type").String() != "location" {
		return nil, false
	}
	res := gjson.GetManyBytes(m.Payload, androidInts...)
	if !slices.ContainsFunc(res, func(r gjson.Result) bool { return r.Exists() && !isJSONInt(r) }) {
		return m.Payload, true
	}
	members := map[string]json.RawMessage{}
	if err := json.Unmarshal(m.Payload, &members); err != nil {
		return nil, false
	}
	for i, name := range androidInts {
		r := res[i]
		switch {
		case !r.Exists() || isJSONInt(r):
		case name == "tst":
			members[name] = strconv.AppendInt(nil, m.TST, 10)
		case r.Type == gjson.Number:
			members[name] = strconv.AppendInt(nil, int64(math.Round(r.Float())), 10)
		default:
			delete(members, name)
		}
	}
	out, err := json.Marshal(members)
	return out, err == nil
}

// isJSONInt reports whether r is a number written as a whole integer.
func isJSONInt(r gjson.Result) bool {
	return r.Type == gjson.Number && !strings.ContainsAny(r.Raw, ".eE")
}

// friendCard is a friend's card for the reply, carrying the same tid as
// their location so the apps attach it; nil without a name or face.
func friendCard(card json.RawMessage, tid string) []byte {
	r := gjson.GetManyBytes(card, "name", "face")
	c := struct {
		Type string `json:"_type"`
		Name string `json:"name,omitempty"`
		Face string `json:"face,omitempty"`
		TID  string `json:"tid"`
	}{"card", r[0].String(), r[1].String(), tid}
	if c.Name == "" && c.Face == "" {
		return nil
	}
	b, _ := json.Marshal(c)
	return b
}

// androidActions are the cmd actions the Android app can parse (it has no
// "dump"); see commands.go for all the actions accepted.
var androidActions = map[string]bool{
	cmdReportLocation: true, cmdStatus: true, cmdSetWaypoints: true,
	cmdSetConfiguration: true, cmdClearWaypoints: true,
}

// Friends' transitions in HTTP-mode replies: those recorded since the
// device's previous reply (at first, in the last transitionWindow), at most
// maxTransitions, so a friend's app shows "alice entered Home" as it would
// over MQTT.
const (
	transitionWindow = 15 * time.Minute
	maxTransitions   = 20
)

func (s *Server) friendTransitions(ctx context.Context, viewer storage.User, user, device string, friends []storage.Message, tids []string) ([][]byte, error) {
	if s.Events == nil || s.EventStore == nil {
		return nil, nil
	}
	now := time.Now().UnixMilli()
	s.pollMu.Lock()
	if s.lastPoll == nil {
		s.lastPoll = map[[2]string]int64{}
	}
	since, ok := s.lastPoll[[2]string{user, device}]
	if !ok {
		since = now - transitionWindow.Milliseconds()
	}
	s.lastPoll[[2]string{user, device}] = now
	s.pollMu.Unlock()
	var out [][]byte
	for i := range friends {
		f := &friends[i]
		if !s.Events.CanSee(viewer, f.User, f.Device) {
			continue // a coarse share shows no transitions
		}
		q := storage.EventQuery{User: f.User, Device: f.Device, From: since/1000 - 86400}
		err := s.EventStore.Events(ctx, q, func(ev *storage.Event) error {
			if ev.Created > since && ev.Created <= now && len(out) < maxTransitions {
				topic := recorder.TopicPrefix + "/" + f.User + "/" + f.Device
				out = append(out, events.TransitionPayload(*ev, tids[i], topic, 0))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
