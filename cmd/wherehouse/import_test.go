package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorderStore writes an OwnTracks Recorder store as the Recorder lays it
// out (recorder.c putrec/do_info/xx_dump): two users, three devices,
// several months, a per-device and a per-user (older Recorders) card, a
// waypoint set, and last positions, one of them newer than its .rec files.
type recorderStore struct {
	root     string
	messages int64 // valid messages in it
	existing int64 // of them already there on a first import (last == newest .rec line)
	skipped  int64
	points   map[string]int // user/device -> locations
	bobLast  int64          // tst of bob's last position, only in last/
}

func writeRecorderStore(t *testing.T) recorderStore {
	t.Helper()
	rs := recorderStore{root: t.TempDir(), points: map[string]int{}}
	write := func(rel, content string) {
		p := filepath.Join(rs.root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	line := func(b *strings.Builder, at int64, rel, payload string) {
		fmt.Fprintf(b, "%s\t%-18s\t%s\n", time.Unix(at, 0).UTC().Format("2006-01-02T15:04:05Z"), rel, payload)
		rs.messages++
	}
	loc := func(tst int64, lat, lon float64, tid string) string {
		return fmt.Sprintf(`{"_type":"location","tid":"%s","tst":%d,"lat":%.6f,"lon":%.6f,"acc":12,"batt":80,"conn":"w","tzname":"Europe/Berlin"}`, tid, tst, lat, lon)
	}
	// month writes n locations from start, 60 s apart, and returns the
	// newest payload.
	month := func(rel, user, device string, start int64, n int, tid string, extra func(*strings.Builder)) string {
		var b strings.Builder
		var last string
		for i := range n {
			tst := start + int64(i)*60
			last = loc(tst, 52.5+float64(i)*1e-4, 13.4+float64(i)*1e-4, tid)
			line(&b, tst, "*", last)
		}
		if extra != nil {
			extra(&b)
		}
		write(rel, b.String())
		rs.points[user+"/"+device] += n
		return last
	}
	lastFile := func(payload, user, device string) string {
		return strings.TrimSuffix(payload, "}") + fmt.Sprintf(`,"topic":"owntracks/%s/%s","username":"%s","device":"%s","ghash":"u33dc0"}`, user, device, user, device)
	}

	april := time.Date(2024, 4, 10, 8, 0, 0, 0, time.UTC).Unix()
	may := time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC).Unix()
	month("rec/alice/phone/2024-04.rec", "alice", "phone", april, 100, "ph", func(b *strings.Builder) {
		line(b, april+7000, "lwt", `{"_type":"lwt"}`)
		line(b, april+7100, "event", `{"_type":"transition","tid":"ph","tst":`+strconv.FormatInt(april+7100, 10)+`,"wtst":1700000000,"lat":52.51,"lon":13.41,"acc":12,"event":"leave","desc":"Home","t":"c"}`)
		line(b, april+7200, "status", `{"_type":"status","android":{"hib":1,"bo":1,"loc":0,"ps":0,"wifi":1}}`)
		line(b, april+7300, "waypoint", `{"_type":"waypoint","tst":1712000000,"lat":52.53,"lon":13.38,"rad":60,"desc":"Gym","rid":"c3"}`)
	})
	newest := month("rec/alice/phone/2024-05.rec", "alice", "phone", may, 100, "ph", func(b *strings.Builder) {
		fmt.Fprintf(b, "2024-05-03T01:00:00Z\t*                 \t0A1B2C binary dump\n") // the Recorder keeps non-JSON as is
		rs.skipped++
	})
	write("last/alice/phone/alice-phone.json", lastFile(newest, "alice", "phone")+"\n")
	rs.messages++
	rs.existing++
	write("cards/alice/phone/alice-phone.json", `{"_type":"card","name":"Alice","face":"iVBORw0KGgo=","tid":"al"}`+"\n")
	rs.messages++
	write("waypoints/alice/phone/alice-phone.otrw", `{
	"_type":	"waypoints",
	"waypoints":	[{
			"_type":	"waypoint",
			"desc":	"Home",
			"lat":	52.52,
			"lon":	13.4,
			"rad":	100,
			"tst":	1700000000,
			"rid":	"a1"
		}, {
			"_type":	"waypoint",
			"desc":	"Work",
			"lat":	52.5,
			"lon":	13.45,
			"rad":	150,
			"tst":	1700000100,
			"rid":	"b2"
		}, {
			"_type":	"waypoint",
			"desc":	"Gym",
			"lat":	52.53,
			"lon":	13.38,
			"rad":	60,
			"tst":	1712000000,
			"rid":	"c3"
		}]
}`)
	rs.messages++
	tablet := month("rec/alice/tablet/2024-05.rec", "alice", "tablet", may+30, 50, "tb", nil)
	write("last/alice/tablet/alice-tablet.json", lastFile(tablet, "alice", "tablet")+"\n")
	rs.messages++
	rs.existing++

	march := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).Unix()
	month("rec/bob/iphone/2024-03.rec", "bob", "iphone", march, 30, "bb", nil)
	rs.bobLast = march + 86400 // the .rec files of later months were removed
	write("last/bob/iphone/bob-iphone.json", lastFile(loc(rs.bobLast, 48.85, 2.35, "bb"), "bob", "iphone")+"\n")
	rs.messages++
	rs.points["bob/iphone"]++
	write("cards/bob/bob.json", `{"_type":"card","name":"Bob","tid":"bb"}`+"\n") // one card per user
	rs.messages++
	return rs
}

var summaryRE = regexp.MustCompile(`imported (\d+) messages \((\d+) new, (\d+) already there\), skipped (\d+) lines`)

// importCounts reads the summary line of "wherehouse import".
func importCounts(t *testing.T, out string) (messages, added, existing, skipped int64) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in the output:\n%s", out)
	}
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	return n(m[1]), n(m[2]), n(m[3]), n(m[4])
}

func TestImportRecorderStore(t *testing.T) {
	rs := writeRecorderStore(t)
	dir := t.TempDir()

	// No server: the store is opened directly.
	out := runCLI(t, "", "import", "--data", dir, rs.root)
	msgs, added, existing, skipped := importCounts(t, out)
	if msgs != rs.messages || added != rs.messages-rs.existing || existing != rs.existing || skipped != rs.skipped {
		t.Errorf("first import: %d messages (%d new, %d existing), %d skipped; want %d (%d new, %d existing), %d\n%s",
			msgs, added, existing, skipped, rs.messages, rs.messages-rs.existing, rs.existing, rs.skipped, out)
	}
	if !strings.Contains(out, "rec/alice/phone/2024-05.rec:101") {
		t.Errorf("the skipped line is not named:\n%s", out)
	}

	// Server running: the import goes through the control socket, and the
	// store's duplicate check makes it store nothing.
	s := startServer(t, dir)
	out = runCLI(t, "", "import", "--data", dir, filepath.Join(rs.root, "rec"))
	if msgs, added, existing, _ := importCounts(t, out); msgs != rs.messages || added != 0 || existing != rs.messages {
		t.Errorf("second import (through the server): %d messages, %d new, %d existing; want %d, 0, %d\n%s", msgs, added, existing, rs.messages, rs.messages, out)
	}

	var list struct {
		Results []string `json:"results"`
	}
	s.getJSON("admin", adminPassword, "/api/0/list", &list)
	if !contains(list.Results, "alice") || !contains(list.Results, "bob") {
		t.Errorf("/api/0/list = %v", list.Results)
	}
	s.getJSON("admin", adminPassword, "/api/0/list?user=alice", &list)
	if strings.Join(list.Results, ",") != "phone,tablet" {
		t.Errorf("/api/0/list?user=alice = %v", list.Results)
	}
	for key, want := range rs.points {
		user, device, _ := strings.Cut(key, "/")
		if got := s.locations("admin", adminPassword, user, device).Count; got != want {
			t.Errorf("%s: %d locations, want %d", key, got, want)
		}
	}
	var last []map[string]any
	s.getJSON("admin", adminPassword, "/api/0/last?user=bob", &last)
	if len(last) != 1 || int64(last[0]["tst"].(float64)) != rs.bobLast {
		t.Errorf("bob's last position %v, want tst %d (from last/)", last, rs.bobLast)
	} else if _, ok := last[0]["ghash"]; ok {
		t.Errorf("bob's last position keeps what the Recorder added: %v", last[0])
	}

	var devices []struct {
		User, Device, Name, TID string
	}
	s.getJSON("admin", adminPassword, "/api/v1/devices", &devices)
	names := map[string]string{}
	for _, d := range devices {
		names[d.User+"/"+d.Device] = d.Name
	}
	if names["alice/phone"] != "Alice" || names["bob/iphone"] != "Bob" || names["alice/tablet"] != "" {
		t.Errorf("device names from cards: %v", names)
	}
	var phone struct {
		Waypoints []struct {
			Desc string `json:"desc"`
		} `json:"waypoints"`
	}
	s.getJSON("admin", adminPassword, "/api/v1/devices/alice/phone", &phone)
	var regions []string
	for _, w := range phone.Waypoints {
		regions = append(regions, w.Desc)
	}
	if strings.Join(regions, ",") != "Home,Work,Gym" {
		t.Errorf("alice/phone regions = %v, want Home,Work,Gym", regions)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestImportWhileServing(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	testdata := filepath.Join("..", "..", "importer", "testdata")
	files := []string{filepath.Join(testdata, "track.gpx"), filepath.Join(testdata, "walk.jsonl")}
	out := runCLI(t, "", append([]string{"import", "--data", dir, "--user", "carol", "--device", "phone"}, files...)...)
	msgs, added, _, skipped := importCounts(t, out)
	if msgs != 9 || added != 9 || skipped != 4 {
		t.Errorf("import: %d messages, %d new, %d skipped; want 9, 9, 4\n%s", msgs, added, skipped, out)
	}
	for _, want := range []string{"time: 1", "coordinates: 1", "json: 1", "field: 1", "walk.jsonl:4", "track.gpx:33", "counts as done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The running server has the new last position at once.
	var last []map[string]any
	s.getJSON("admin", adminPassword, "/api/0/last?user=carol", &last)
	if len(last) != 1 || last[0]["tst"].(float64) != 1780299851 {
		t.Errorf("/api/0/last after the import: %v", last)
	}
	// An import of older history leaves the last position alone.
	runCLI(t, "", "import", "--data", dir, "--user", "carol", "--device", "phone", filepath.Join(testdata, "Records.json"))
	s.getJSON("admin", adminPassword, "/api/0/last?user=carol", &last)
	if len(last) != 1 || last[0]["tst"].(float64) != 1780299851 {
		t.Errorf("/api/0/last after importing older history: %v", last)
	}
	out = runCLI(t, "", append([]string{"import", "--data", dir, "--user", "carol", "--device", "phone"}, files...)...)
	if _, added, existing, _ := importCounts(t, out); added != 0 || existing != 9 {
		t.Errorf("import again: %d new, %d existing; want 0, 9\n%s", added, existing, out)
	}

	// A file that is not what it claims to be fails the command, and says why.
	cmd := exec.Command(binary, "import", "--data", dir, "--user", "carol", "--device", "phone", "--format", "gpx", filepath.Join(testdata, "Records.json"))
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "not a GPX file") {
		t.Errorf("wrong format: err=%v\n%s", err, b)
	}
	cmd = exec.Command(binary, "import", "--data", dir, filepath.Join(testdata, "track.gpx"))
	b, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "--user and --device") {
		t.Errorf("GPX without an owner: err=%v\n%s", err, b)
	}

	// Admins may upload a file over HTTP.
	s.addUser("dave", "dave-pass-123")
	gpx, err := os.ReadFile(filepath.Join(testdata, "track.gpx"))
	if err != nil {
		t.Fatal(err)
	}
	upload := func(user, password string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, s.url("/api/v1/import?user=dave&device=gps&name=track.gpx"), bytes.NewReader(gpx))
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if code, body := upload("dave", "dave-pass-123"); code != http.StatusForbidden {
		t.Errorf("upload by a user: %d %s, want 403", code, body)
	}
	code, body := upload("admin", adminPassword)
	var sum struct{ New, Skipped int }
	if err := json.Unmarshal(body, &sum); code != http.StatusOK || err != nil || sum.New != 4 || sum.Skipped != 2 {
		t.Errorf("upload by an admin: %d %s", code, body)
	}
	if got := s.locations("admin", adminPassword, "dave", "gps").Count; got != 4 {
		t.Errorf("uploaded locations: %d, want 4", got)
	}
}

// TestImportKill9Resume kills a large import mid-way and runs it again:
// everything is then stored exactly once.
func TestImportKill9Resume(t *testing.T) {
	const points = 120_000
	src := filepath.Join(t.TempDir(), "big.rec")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i := range points {
		tst := start + int64(i)*30
		fmt.Fprintf(w, "%s\t*                 \t%s\n", time.Unix(tst, 0).UTC().Format("2006-01-02T15:04:05Z"),
			location(52.5+float64(i%1000)*1e-5, 13.4+float64(i%977)*1e-5, tst, "ph"))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dir := t.TempDir()
	args := []string{"import", "--data", dir, "--user", "erin", "--device", "phone", "--progress", src}

	// Kill it once some batches are stored.
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	progressed := make(chan struct{})
	go func() {
		r := bufio.NewReader(stderr)
		once := false
		for {
			s, err := r.ReadString('\r')
			if !once && regexp.MustCompile(`[1-9]\d{4,} messages`).MatchString(s) {
				once = true
				close(progressed)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-progressed:
	case <-time.After(60 * time.Second):
		t.Fatal("no progress within 60s")
	}
	cmd.Process.Kill()
	cmd.Wait()

	out := runCLI(t, "", args...)
	msgs, added, existing, skipped := importCounts(t, out)
	if msgs != points || added+existing != points || skipped != 0 {
		t.Fatalf("after the kill: %d messages (%d new, %d existing), want %d\n%s", msgs, added, existing, points, out)
	}
	if existing == 0 || added == 0 {
		t.Errorf("the kill did not land mid-way: %d new, %d existing", added, existing)
	}
	t.Logf("killed after %d of %d were stored; the rerun stored %d", existing, points, added)
	out = runCLI(t, "", args...)
	if _, added, existing, _ := importCounts(t, out); added != 0 || existing != points {
		t.Errorf("third run: %d new, %d existing; want 0, %d", added, existing, points)
	}
	// The store the kill left is sound: every point once, packed, indexed.
	if out := runCLI(t, "", "check", "--data", dir); !strings.Contains(out, fmt.Sprintf("%d locations", points)) || !strings.Contains(out, "no problems found") {
		t.Errorf("check after the resumed import: %s", out)
	}
	s := startServer(t, dir)
	var last []map[string]any
	s.getJSON("admin", adminPassword, "/api/0/last?user=erin", &last)
	if len(last) != 1 || int64(last[0]["tst"].(float64)) != start+int64(points-1)*30 {
		t.Errorf("last position after the resumed import: %v", last)
	}
}

// TestImportFiresNoEvents imports a track that enters and leaves a fence,
// newer than the device's last live fix: it fires nothing, neither while
// the server runs nor when it starts again (the fence engine's watermark
// moved past the import).
func TestImportFiresNoEvents(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.addUser("carol", "carol-pass-123")
	runCLI(t, "", "fence", "add", "Home", "--user", "carol", "--circle", "52.538,13.424,100", "--data", dir)
	// A live fix far away, older than the track.
	if code, body := s.send(http.MethodPost, "carol", "carol-pass-123", "/pub?u=carol&d=walker", location(52.45, 13.3, 1780290000, "wk")); code != http.StatusOK {
		t.Fatalf("pub: %d %s", code, body)
	}
	track := filepath.Join("..", "..", "fixtures", "tracks", "walk-home.jsonl")
	out := runCLI(t, "", "import", "--data", dir, "--user", "carol", "--device", "walker", track)
	if _, added, _, _ := importCounts(t, out); added == 0 {
		t.Fatalf("nothing imported:\n%s", out)
	}
	if evs := apiEvents(t, s, "carol", "carol-pass-123", "user=carol&from=2000-01-01&to=2100-01-01"); len(evs) != 0 {
		t.Errorf("the import fired %s", kindsOf(evs))
	}
	s.stop()
	s = startServer(t, dir)
	// Give a catch-up at start the time to run: a live fix after it is
	// evaluated after anything caught up.
	if code, body := s.send(http.MethodPost, "carol", "carol-pass-123", "/pub?u=carol&d=walker", location(52.538, 13.424, 1780400000, "wk")); code != http.StatusOK {
		t.Fatalf("pub: %d %s", code, body)
	}
	var evs []map[string]any
	eventually(t, "the live enter", func() bool {
		evs = apiEvents(t, s, "carol", "carol-pass-123", "user=carol&from=2000-01-01&to=2100-01-01")
		for _, ev := range evs {
			if ev["tst"] == float64(1780400000) {
				return true
			}
		}
		return false
	})
	if got := kindsOf(evs); len(evs) != 1 {
		t.Errorf("events after a restart: %s, want only the live enter", got)
	}
}

// TestExportImportRoundTrip exports a device's history (rec: every
// message; json: the locations) and imports it into another store.
func TestExportImportRoundTrip(t *testing.T) {
	rs := writeRecorderStore(t)
	a, b := t.TempDir(), t.TempDir()
	runCLI(t, "", "import", "--data", a, rs.root, "--user", "alice", "--device", "phone")
	for _, format := range []string{"rec", "json"} {
		out, err := exec.Command(binary, "export", "--data", a, "--user", "alice", "--device", "phone", "--format", format).Output()
		if err != nil {
			t.Fatalf("export %s: %v", format, err)
		}
		file := filepath.Join(t.TempDir(), "phone."+format)
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		got := runCLI(t, "", "import", "--data", b, "--user", "alice", "--device", "phone", file)
		msgs, _, _, skipped := importCounts(t, got)
		want := int64(rs.points["alice/phone"])
		if format == "rec" {
			want = 206 // every message: 200 locations, lwt, transition, status, waypoint, card, regions
		}
		if msgs != want || skipped != 0 {
			t.Errorf("%s round trip: %d messages, %d skipped; want %d, 0\n%s", format, msgs, skipped, want, got)
		}
	}
	// The json export of the same locations added nothing to the rec one.
	out := runCLI(t, "", "import", "--data", b, "--user", "alice", "--device", "phone", rs.root)
	if _, added, _, _ := importCounts(t, out); added != 0 {
		t.Errorf("importing the original after the round trip added %d\n%s", added, out)
	}
}
