package recorder

import (
	"testing"
	"time"
)

// The fence engine reads a location's accuracy from the parsed message.
func TestParseSetsAccuracy(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    float64
	}{
		{`{"_type":"location","lat":1,"lon":2,"tst":3,"acc":12.5}`, 12.5},
		{`{"_type":"location","lat":1,"lon":2,"tst":3}`, 0},
	} {
		m, err := Parse("owntracks/a/b", []byte(tc.payload), time.Unix(10, 0))
		if err != nil || m.Acc != tc.want {
			t.Errorf("%s: acc %v, err %v; want %v", tc.payload, m.Acc, err, tc.want)
		}
	}
}
