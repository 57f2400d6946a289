package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// failingHistory is the real store with a read failure injected after
// failAfter messages of AllMessages.
type failingHistory struct {
	storage.Messages
	failAfter int
}

func (f failingHistory) AllMessages(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error) error {
	n := 0
	return f.Messages.AllMessages(ctx, q, func(m *storage.Message) error {
		if n++; n > f.failAfter {
			return errors.New("disk on fire")
		}
		return fn(m)
	})
}

// TestControlExport checks GET /export of the control socket: the body is
// Export's, bad options are a 400 before any body, and a failure after
// the body began is reported in the trailer.
func TestControlExport(t *testing.T) {
	a := newWebAPI(t)
	const n = 3000 // rec lines of ~150 bytes: several flushes
	msgs := make([]storage.Message, n)
	for i := range msgs {
		tst := int64(1714546800 + i)
		msgs[i] = storage.Message{User: "alice", Device: "phone", Type: "location", Topic: "owntracks/alice/phone", TST: tst,
			Received: tst * 1000, Lat: 52.5, Lon: 13.4,
			Payload: fmt.Appendf(nil, `{"_type":"location","tid":"ph","lat":52.5,"lon":13.4,"tst":%d,"acc":10,"batt":80,"conn":"w"}`, tst)}
	}
	if _, err := a.store.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, history storage.Messages, query string) (*http.Response, []byte) {
		t.Helper()
		srv := httptest.NewServer(Control(ControlDeps{History: history, Version: "test", Log: slog.New(slog.DiscardHandler)}))
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/export?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	t.Run("whole", func(t *testing.T) {
		for _, format := range []string{"rec", "gpx", "json"} {
			resp, body := get(t, a.store, "user=alice&device=phone&format="+format)
			var want bytes.Buffer
			if err := Export(context.Background(), a.store, "test", ExportOptions{User: "alice", Device: "phone", To: 1 << 40, Format: format}, &want); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want.Bytes()) || resp.Trailer.Get(ExportErrorTrailer) != "" {
				t.Errorf("%s: status %d, trailer %q, %d bytes; want 200, no trailer and Export's %d bytes",
					format, resp.StatusCode, resp.Trailer.Get(ExportErrorTrailer), len(body), want.Len())
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, q := range []string{"user=alice&device=phone&format=pdf", "user=alice&format=json", "user=alice&device=phone&from=x"} {
			resp, body := get(t, a.store, q)
			var ce ControlError
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &ce) != nil || ce.Code != "invalid" {
				t.Errorf("%s: status %d, %s; want 400 with code invalid", q, resp.StatusCode, body)
			}
		}
	})
	t.Run("failure after the body began", func(t *testing.T) {
		resp, body := get(t, failingHistory{a.store, n / 2}, "user=alice&device=phone&format=rec")
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("status %d, %d bytes: want the body begun", resp.StatusCode, len(body))
		}
		if msg := resp.Trailer.Get(ExportErrorTrailer); msg != "disk on fire" {
			t.Errorf("trailer %q, want the failure", msg)
		}
	})
}
