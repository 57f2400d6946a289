package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/storage"
)

const (
	wsWriteWait  = 10 * time.Second
	wsPingPeriod = 30 * time.Second
	wsPongWait   = wsPingPeriod * 2
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 16 << 10,
	CheckOrigin:     sameOrigin,
}

// sameOrigin refuses cross-site pages: the browser would attach the
// user's stored credentials to their WebSocket (CSWSH). Behind a reverse
// proxy that rewrites Host (the owntracks/frontend image's nginx does),
// the host the browser used arrives as X-Forwarded-Host; a page cannot set
// that header on a WebSocket handshake, so it is as good as Host here.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	fwd, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ",")
	return strings.EqualFold(u.Host, r.Host) || (fwd != "" && strings.EqualFold(u.Host, strings.TrimSpace(fwd)))
}

// wsLast serves /ws/last like the Recorder: the client sends "LAST" and
// gets one frame per last position; after that every new location it may
// see is pushed as it is stored.
func (s *Server) wsLast(c *echo.Context) error {
	me := currentUser(c)
	conn, err := upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	defer conn.Close()
	updates, stop := s.Live.Subscribe()
	defer stop()

	requests := wsRead(conn)
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	ctx := c.Request().Context()
	for {
		select {
		case req, ok := <-requests:
			if !ok {
				return nil
			}
			if strings.EqualFold(req, "LAST") {
				last, err := s.visibleLast(ctx, me, "", "")
				if err != nil {
					return err
				}
				states, err := s.deviceStates(ctx, last)
				if err != nil {
					return err
				}
				for i := range last {
					if err := s.wsSend(conn, &last[i], states.fields(&last[i])); err != nil {
						return nil
					}
				}
			}
		case m, ok := <-updates:
			if !ok {
				return nil
			}
			m, ok = s.redact(me, &m)
			if !ok {
				continue
			}
			if err := s.wsSend(conn, &m, s.liveFields(ctx, &m)); err != nil {
				return nil
			}
		case <-ping.C:
			if wsPing(conn) != nil {
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

func (s *Server) wsSend(conn *websocket.Conn, m *storage.Message, device []field) error {
	conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
	return conn.WriteMessage(websocket.TextMessage, appendObject(nil, m.Payload, append(lastFields(m), device...), nil))
}

// wsRead reads a WebSocket's client frames in its own goroutine (owned by
// the handler: it ends when the connection closes), keeping the read
// deadline alive with pongs. Text frames, trimmed, go to the returned
// channel, dropped when it is full; it is closed when the connection is.
func wsRead(conn *websocket.Conn) <-chan string {
	msgs := make(chan string, 4)
	go func() {
		defer close(msgs)
		conn.SetReadLimit(4096)
		conn.SetReadDeadline(time.Now().Add(wsPongWait))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			select {
			case msgs <- strings.TrimSpace(string(msg)):
			default:
			}
		}
	}()
	return msgs
}

// wsPing sends a keepalive ping.
func wsPing(conn *websocket.Conn) error {
	conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
	return conn.WriteMessage(websocket.PingMessage, nil)
}

// wsGoingAway tells the client the server is shutting down.
func wsGoingAway(conn *websocket.Conn) {
	conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
}
