package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

// gpxDoc is what a GPX reader sees of our files.
type gpxDoc struct {
	XMLName xml.Name `xml:"http://www.topografix.com/GPX/1/1 gpx"`
	Version string   `xml:"version,attr"`
	Creator string   `xml:"creator,attr"`
	Tracks  []struct {
		Name     string `xml:"name"`
		Segments []struct {
			Points []struct {
				Lat  float64  `xml:"lat,attr"`
				Lon  float64  `xml:"lon,attr"`
				Ele  *float64 `xml:"ele"`
				Time string   `xml:"time"`
			} `xml:"trkpt"`
		} `xml:"trkseg"`
	} `xml:"trk"`
}

func TestLocationsGPX(t *testing.T) {
	a := newWebAPI(t)
	const n = 5
	storeZigzag(t, a, n)
	w := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, "&format=gpx"), basic: [2]string{"alice", alicePassword}})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/gpx+xml" {
		t.Errorf("Content-Type %q", ct)
	}
	from, to := time.Unix(zigzagStart, 0).UTC().Format("20060102T150405Z"), time.Unix(zigzagStart+60*(n-1), 0).UTC().Format("20060102T150405Z")
	if cd, want := w.Header().Get("Content-Disposition"), `attachment; filename="alice-phone-`+from+`-`+to+`.gpx"`; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	var doc gpxDoc
	if err := xml.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v in %s", err, w.Body)
	}
	if doc.Version != "1.1" || doc.Creator != "wherehouse test" || len(doc.Tracks) != 1 || len(doc.Tracks[0].Segments) != 1 {
		t.Fatalf("document %+v", doc)
	}
	if doc.Tracks[0].Name != "alice/phone" {
		t.Errorf("track name %q", doc.Tracks[0].Name)
	}
	pts := doc.Tracks[0].Segments[0].Points
	if len(pts) != n {
		t.Fatalf("%d points, want %d", len(pts), n)
	}
	for i, p := range pts {
		tst := int64(zigzagStart + 60*i)
		if p.Lat != 52.5+float64(i%2)*0.0009 || p.Lon != 13.4+float64(i)*0.001 || p.Ele == nil || *p.Ele != float64(30+i) ||
			p.Time != time.Unix(tst, 0).UTC().Format(time.RFC3339) {
			t.Errorf("point %d: %+v (ele %v)", i, p, p.Ele)
		}
	}
	// ele comes before time, as the GPX 1.1 schema wants.
	if !bytes.Contains(w.Body.Bytes(), []byte(`<trkpt lat="52.5" lon="13.4"><ele>30</ele><time>2024-05-01T09:52:00Z</time></trkpt>`)) {
		t.Errorf("first point not as expected:\n%s", w.Body)
	}

	t.Run("whole days and odd names", func(t *testing.T) {
		msg := storage.Message{User: "alice", Device: `my "car" & <bike>`, Type: "location", Topic: "owntracks/alice/x", TST: 1714557120,
			Received: 1714557120000, Lat: 1.5, Lon: -2.25, Payload: []byte(`{"_type":"location","lat":1.5,"lon":-2.25,"tst":1714557120}`)}
		if _, err := a.store.Append(context.Background(), []storage.Message{msg}); err != nil {
			t.Fatal(err)
		}
		w := a.do(t, request{method: http.MethodGet, path: "/api/0/locations?user=alice&device=my%20%22car%22%20%26%20%3Cbike%3E&from=2024-05-01&to=2024-05-01&format=gpx",
			basic: [2]string{"alice", alicePassword}})
		if cd, want := w.Header().Get("Content-Disposition"), `attachment; filename="alice-my__car_____bike_-2024-05-01-2024-05-01.gpx"`; cd != want {
			t.Errorf("Content-Disposition %q, want %q", cd, want)
		}
		var doc gpxDoc
		if err := xml.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%v in %s", err, w.Body)
		}
		if doc.Tracks[0].Name != `alice/my "car" & <bike>` {
			t.Errorf("name %q", doc.Tracks[0].Name)
		}
		if p := doc.Tracks[0].Segments[0].Points; len(p) != 1 || p[0].Ele != nil || p[0].Lon != -2.25 {
			t.Errorf("points %+v: want one, without ele (no alt)", p)
		}
	})
}

func readCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	return rows
}

func TestLocationsCSV(t *testing.T) {
	a := newWebAPI(t)
	const n = 3
	storeZigzag(t, a, n)
	alice := [2]string{"alice", alicePassword}
	w := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, "&format=csv"), basic: alice})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="alice-phone-`) || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows := readCSV(t, w.Body.Bytes())
	want := [][]string{
		{"tst", "isotst", "lat", "lon", "acc", "alt", "vel", "cog", "batt", "tid"},
		{"1714557120", "2024-05-01T09:52:00Z", "52.5", "13.4", "0", "30", "", "", "80", "ph"},
		{"1714557180", "2024-05-01T09:53:00Z", "52.5009", "13.401", "1", "31", "", "", "80", "ph"},
		{"1714557240", "2024-05-01T09:54:00Z", "52.5", strconv.FormatFloat(zigzagLon(2), 'f', -1, 64), "2", "32", "", "", "80", "ph"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("csv\n%q\nwant\n%q", rows, want)
	}
	if !bytes.HasSuffix(w.Body.Bytes(), []byte("ph\r\n")) {
		t.Errorf("lines should end in CRLF (RFC 4180)")
	}

	t.Run("fields", func(t *testing.T) {
		w := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, "&format=csv&fields=tst,SSID,disptst,nope,_type,tst"), basic: alice})
		rows := readCSV(t, w.Body.Bytes())
		if want := []string{"tst", "SSID", "disptst", "nope", "_type"}; !slices.Equal(rows[0], want) {
			t.Errorf("header %q, want %q", rows[0], want)
		}
		if want := []string{"1714557120", `home, "5G"`, "2024-05-01 09:52:00", "", "location"}; !slices.Equal(rows[1], want) {
			t.Errorf("row %q, want %q", rows[1], want)
		}
		if !bytes.Contains(w.Body.Bytes(), []byte(`"home, ""5G"""`)) {
			t.Errorf("quoting: %s", w.Body)
		}
	})
	t.Run("too many fields", func(t *testing.T) {
		f := strings.Repeat("a,", maxCSVColumns) + "b"
		for i := range maxCSVColumns + 1 {
			f += "," + strconv.Itoa(i)
		}
		if w := a.do(t, request{method: http.MethodGet, path: zigzagPath(n, "&format=csv&fields="+f), basic: alice}); w.Code != http.StatusBadRequest {
			t.Errorf("status %d", w.Code)
		}
	})
}

// zigzagLon is storeZigzag's longitude of point i, computed as it does.
func zigzagLon(i int) float64 { return 13.4 + float64(i)*0.001 }

func TestCSVValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{`12`, `12`},
		{`-1.5e3`, `-1.5e3`},
		{`true`, `true`},
		{`null`, ``},
		{`"ph"`, `ph`},
		{`"caf\u00e9, bar"`, `"café, bar"`},
		{`" lead"`, `" lead"`},
		{`"line\nbreak"`, "\"line\nbreak\""},
		{`["Home","Work"]`, `"[""Home"",""Work""]"`},
		{`{"a":1}`, `"{""a"":1}"`},
	}
	for _, tc := range tests {
		if got := string(appendCSVValue(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendCSVValue(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// plainStore hides the store's copy-free walk: the handlers fall back to
// Locations.
type plainStore struct{ Store }

// TestExportPaths checks that both ways of reading give the same answer
// in every format, simplified or not, also for a viewer with a coarse
// share (who must never get the exact position).
func TestExportPaths(t *testing.T) {
	a := newWebAPI(t)
	const n = 300
	storeZigzag(t, a, n)
	ctx := context.Background()
	if err := a.store.CreateUser(ctx, storage.User{Name: "bob", PasswordHash: cheapHash(t, "bob-pass-123"), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.policy.AddShare(ctx, storage.Share{Owner: "alice", Viewer: "bob", Precision: 1000, History: true}); err != nil {
		t.Fatal(err)
	}
	plain := New(a.Deps)
	plain.Store = plainStore{a.store}
	for _, user := range [][2]string{{"alice", alicePassword}, {"bob", "bob-pass-123"}} {
		for _, q := range []string{"&format=gpx", "&format=csv", "&format=csv&simplify=50", "&simplify=50", "&format=geojson&max_points=20", "&format=gpx&max_points=3&limit=100",
			"&format=xml", "&format=xml&simplify=50", "&format=kml&max_points=20&gap=120", "&format=linestring&simplify=50&gap",
			"&format=geojsonpoi", "&format=gpx&gap=60&max_points=30"} {
			t.Run(user[0]+q, func(t *testing.T) {
				r := request{method: http.MethodGet, path: zigzagPath(n, q), basic: user}
				got, want := a.do(t, r), (&webAPI{Server: plain}).do(t, r)
				if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
					t.Fatalf("status %d; bodies differ:\n%.300s\n%.300s", got.Code, got.Body, want.Body)
				}
				if got.Header().Get(pointsHeader) != want.Header().Get(pointsHeader) {
					t.Errorf("%s %q and %q", pointsHeader, got.Header().Get(pointsHeader), want.Header().Get(pointsHeader))
				}
				if user[0] == "bob" && (bytes.Contains(got.Body.Bytes(), []byte("13.401")) || bytes.Contains(got.Body.Bytes(), []byte("home"))) {
					t.Errorf("bob, with a 1 km share, sees exact data:\n%.500s", got.Body)
				}
			})
		}
	}
}
