package events_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/wherehouse/wherehouse/events"
)

// FuzzFenceFeature feeds fence definitions as users post them: a fence is
// either refused with ErrInvalid or accepted in a form that renders back to
// a Feature that is accepted again, unchanged.
func FuzzFenceFeature(f *testing.F) {
	for _, seed := range []string{
		`{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,52.5]},"properties":{"name":"Home","radius":100}}`,
		`{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[13.40,52.50],[13.41,52.50],[13.41,52.51],[13.40,52.50]]]},"properties":{"name":"Park","dwell":60,"devices":["Phone","phone",""]}}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}`,
		`{"type":"Feature","geometry":null,"properties":{"name":"x"}}`,
		`{"type":"Feature","geometry":{"type":"Point","coordinates":[1e309,0]},"properties":{"name":"x","radius":1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := events.ParseFeature(b)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		in.Owner = "fuzz"
		fence, g, err := events.Validate(in)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		bd := g.Shape.Bound()
		if math.IsNaN(bd.Min[0]+bd.Max[0]+bd.Min[1]+bd.Max[1]) || math.IsNaN(g.Shape.Distance(0, 0)) {
			t.Fatalf("accepted shape with NaN bound or distance: %s", b)
		}
		// Round trip through the API's rendering.
		again, err := events.ParseFeature(events.FenceFeature(fence))
		if err != nil {
			t.Fatalf("rendered fence does not parse: %v", err)
		}
		again.Owner, again.ID, again.Created = fence.Owner, fence.ID, fence.Created
		back, _, err := events.Validate(again)
		if err != nil {
			t.Fatalf("rendered fence is refused: %v\n%s", err, events.FenceFeature(fence))
		}
		a, _ := json.Marshal(fence)
		c, _ := json.Marshal(back)
		if string(a) != string(c) {
			t.Fatalf("round trip changed the fence:\n%s\n%s", a, c)
		}
	})
}
