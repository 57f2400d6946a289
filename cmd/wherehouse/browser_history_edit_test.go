package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Hiding and deleting history from the map (historyedit.js): a point from
// its popup, the range shown, and showing hidden points again. Every
// change is checked through the HTTP API, not only on the page.

// historyEditTrack publishes a short walk of n fixes, a minute apart and
// about 200 m from each other, ending an hour ago; it returns their times
// and positions.
func historyEditTrack(t *testing.T, s *testServer, user, password string, n int) (tsts []int64, lls [][2]float64) {
	t.Helper()
	c := mustMQTT(t, "tcp://"+s.MQTT, user+"-phone", user, password)
	base := time.Now().Unix() - 3600
	for i := range n {
		tst := base + int64(i)*60
		lat, lon := 52.50+float64(i)*0.002, 13.40+float64(i)*0.003
		publish(t, c, "owntracks/"+user+"/phone", 1, false, location(lat, lon, tst, "ph"))
		tsts = append(tsts, tst)
		lls = append(lls, [2]float64{lat, lon})
	}
	eventually(t, "the track stored", func() bool {
		return len(s.locations(user, password, user, "phone").Data) == n
	})
	return tsts, lls
}

// showHistoryOf opens the history view on user/device over the last 7 days
// and waits for the track.
func (b *browser) showHistoryOf(user, device string) {
	b.t.Helper()
	b.run("open history", chromedp.Click(chromedp.CSS("#nav-history")))
	b.waitFor("history view", `document.body.dataset.view === 'history'`)
	b.waitFor(user+" in the person list", fmt.Sprintf(`[...document.querySelectorAll('#history-user option')].some(o => o.value === %q)`, user))
	b.run("pick "+user, chromedp.SetValue(chromedp.CSS("#history-user"), user),
		do(`document.querySelector('#history-user').dispatchEvent(new Event('change', {bubbles: true}))`))
	b.waitFor(device+" in the device list", fmt.Sprintf(`[...document.querySelectorAll('#history-device option')].some(o => o.value === %q)`, device))
	b.run("pick "+device+", last 7 days", chromedp.SetValue(chromedp.CSS("#history-device"), device),
		do(`document.querySelector('#history-device').dispatchEvent(new Event('change', {bubbles: true}))`),
		chromedp.Click(chromedp.CSS("#history-7d")))
	b.waitFor("the track", `document.body.dataset.historyState === 'ready'`)
}

// clickTrackPoint clicks the map at ll with the mouse, as a person would,
// once the map has stopped moving and no popup is in the way; the view is first set (without
// animation) so every point of the walk is on screen beside the panel.
func (b *browser) clickTrackPoint(ll [2]float64, centre [2]float64) {
	b.t.Helper()
	// A closed popup fades out for a moment, and takes clicks meanwhile.
	b.run("close popups", do(`whMap.closePopup()`))
	b.waitFor("the map at rest", `!document.querySelector('.leaflet-popup') && !whMap._animatingZoom && !(whMap._panAnim && whMap._panAnim._inProgress)`)
	b.run("frame the walk", do(fmt.Sprintf(`whMap.setView([%v, %v], 15, {animate: false})`, centre[0], centre[1])))
	p := eval[struct{ X, Y float64 }](b, fmt.Sprintf(`(() => { const r = whMap.getContainer().getBoundingClientRect();
		const p = whMap.latLngToContainerPoint([%v, %v]); return {X: p.x + r.left, Y: p.y + r.top}; })()`, ll[0], ll[1]))
	// Inside the map and left of the panel, or the click lands elsewhere.
	if p.X < 0 || p.Y < 0 || p.X > 850 || p.Y > 800 {
		b.t.Fatalf("point %v is at %v, off the free part of the map", ll, p)
	}
	b.run("click the point", chromedp.MouseClickXY(p.X, p.Y))
}

// statPoints is the number of points drawn.
const statPoints = `document.querySelector('#history-stats').dataset.points`

func storedTSTs(t *testing.T, s *testServer, user, password, owner string) []int64 {
	t.Helper()
	var out []int64
	for _, d := range s.locations(user, password, owner, "phone").Data {
		out = append(out, int64(d["tst"].(float64)))
	}
	return out
}

func hiddenTSTs(t *testing.T, s *testServer, user, password, owner string) []int64 {
	t.Helper()
	var list []struct {
		ID     string `json:"id"`
		TST    int64  `json:"tst"`
		Hidden bool   `json:"hidden"`
	}
	s.getJSON(user, password, "/api/v1/locations/hidden?user="+owner+"&device=phone", &list)
	out := []int64{}
	for _, l := range list {
		if !l.Hidden || l.ID == "" {
			t.Errorf("hidden list entry %+v: want hidden with an ID", l)
		}
		out = append(out, l.TST)
	}
	return out
}

func TestBrowserHistoryEdit(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, t.TempDir())
	const pass = "alice-pass-123"
	s.addUser("alice", pass)
	tsts, lls := historyEditTrack(t, s, "alice", pass, 6)
	centre := [2]float64{(lls[0][0] + lls[5][0]) / 2, (lls[0][1] + lls[5][1]) / 2}
	tstIs := func(tst int64) string {
		return fmt.Sprintf(`document.querySelector('#history-point')?.dataset.tst === '%d'`, tst)
	}

	b.login(s, "alice", pass)
	b.waitFor("logged in", `document.body.dataset.user === 'alice'`)
	b.showHistoryOf("alice", "phone")
	b.waitFor("all six points", statPoints+` === '6'`)
	b.waitFor("the clean-up controls", `!document.querySelector('#history-edit').hidden`)

	// Hide point 2 from its popup, which shows its time and accuracy.
	b.clickTrackPoint(lls[2], centre)
	b.waitFor("the popup of point 2", tstIs(tsts[2]))
	if txt := eval[string](b, `document.querySelector('#history-point').innerText`); !strings.Contains(txt, "Accuracy") || !strings.Contains(txt, "12 m") || !strings.Contains(txt, "Time") {
		t.Errorf("popup text %q, want the time and accuracy", txt)
	}
	b.run("hide it", do(`document.querySelector('#history-point-hide').click()`))
	b.waitFor("five points drawn", statPoints+` === '5' && document.body.dataset.historyState === 'ready'`)
	if got := hiddenTSTs(t, s, "alice", pass, "alice"); !slices.Equal(got, []int64{tsts[2]}) {
		t.Errorf("hidden after hiding point 2: %v, want [%d]", got, tsts[2])
	}
	if got := storedTSTs(t, s, "alice", pass, "alice"); slices.Contains(got, tsts[2]) {
		t.Errorf("/api/0/locations still has the hidden point: %v", got)
	}

	// The hidden list shows it, on the map too; unhide brings it back.
	b.run("show hidden points", do(`document.querySelector('#history-hidden-toggle').click()`))
	b.waitFor("the hidden point listed", fmt.Sprintf(`document.querySelector('#history-hidden li[data-tst="%d"] .history-unhide')`, tsts[2]))
	b.run("unhide it", do(fmt.Sprintf(`document.querySelector('#history-hidden li[data-tst="%d"] .history-unhide').click()`, tsts[2])))
	b.waitFor("six points again, none hidden", statPoints+` === '6' && document.querySelectorAll('#history-hidden li').length === 0 && /No hidden/.test(document.querySelector('#history-hidden-summary').textContent)`)
	if got := hiddenTSTs(t, s, "alice", pass, "alice"); len(got) != 0 {
		t.Errorf("hidden after unhiding: %v, want none", got)
	}
	b.run("stop showing hidden points", do(`document.querySelector('#history-hidden-toggle').click()`))

	// Delete point 4: cancelling the confirmation changes nothing.
	b.clickTrackPoint(lls[4], centre)
	b.waitFor("the popup of point 4", tstIs(tsts[4]))
	b.run("cancel the deletion", do(`window.confirm = (m) => { window.whAsked = m; return false }`),
		do(`document.querySelector('#history-point-delete').click()`))
	if asked := eval[string](b, `window.whAsked || ''`); !strings.Contains(asked, "alice/phone") {
		t.Errorf("confirmation %q, want it to name alice/phone", asked)
	}
	if got := storedTSTs(t, s, "alice", pass, "alice"); len(got) != 6 {
		t.Fatalf("a cancelled deletion deleted: %v", got)
	}
	b.run("confirm the deletion", do(`window.confirm = (m) => { window.whAsked = m; return true }`),
		do(`document.querySelector('#history-point-delete').click()`))
	b.waitFor("five points drawn", statPoints+` === '5' && document.body.dataset.historyState === 'ready'`)
	if got := storedTSTs(t, s, "alice", pass, "alice"); slices.Contains(got, tsts[4]) || len(got) != 5 {
		t.Errorf("/api/0/locations after deleting point 4: %v", got)
	}
	var at []any
	s.getJSON("alice", pass, fmt.Sprintf("/api/v1/locations/alice/phone/%d", tsts[4]), &at)
	if len(at) != 0 {
		t.Errorf("locations at the deleted point's tst: %v, want none (hidden ones included)", at)
	}

	// A point deleted elsewhere meanwhile: the popup says so.
	if code, body := s.send(http.MethodDelete, "alice", pass, fmt.Sprintf("/api/v1/locations/alice/phone/%d", tsts[5]), ""); code != http.StatusOK {
		t.Fatalf("DELETE point 5 over HTTP: %d %s", code, body)
	}
	b.clickTrackPoint(lls[5], centre)
	b.waitFor("the popup of point 5", tstIs(tsts[5]))
	b.run("hide the gone point", do(`document.querySelector('#history-point-hide').click()`))
	b.waitFor("the error in the popup", `!document.querySelector('#history-point-error').hidden && /no longer stored/.test(document.querySelector('#history-point-error').textContent)`)

	// Delete a range: show points 0 and 1 only, then delete what is shown.
	b.run("show the first two minutes", do(fmt.Sprintf(`const local = (s) => { const d = new Date(s * 1000);
		d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 19); };
		document.querySelector('#history-from').value = local(%d);
		document.querySelector('#history-to').value = local(%d);
		document.querySelector('#history-show').click()`, tsts[0]-1, tsts[1]+1)))
	b.waitFor("two points drawn", statPoints+` === '2' && document.body.dataset.historyState === 'ready'`)
	b.run("delete the range", do(`window.confirm = (m) => { window.whAsked = m; return true }`),
		do(`document.querySelector('#history-delete-range').click()`))
	b.waitFor("the range empty", `document.body.dataset.historyState === 'empty'`)
	if asked := eval[string](b, `window.whAsked`); !strings.Contains(asked, "alice/phone") || !strings.Contains(asked, "from") {
		t.Errorf("range confirmation %q, want the device and the range", asked)
	}
	b.waitFor("the notice", `/Deleted 2 locations/.test(document.querySelector('#status-text').textContent)`)
	if got := storedTSTs(t, s, "alice", pass, "alice"); !slices.Equal(got, []int64{tsts[2], tsts[3]}) {
		t.Errorf("/api/0/locations after the range delete: %v, want [%d %d]", got, tsts[2], tsts[3])
	}
}

// TestBrowserHistoryEditDenied: bob may see alice's history (a share with
// history) but never change it: the page shows him no controls, and the
// API refuses him. An admin gets the controls.
func TestBrowserHistoryEditDenied(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")
	s.addUser("bob", "bob-pass-123")
	runCLI(t, "", "share", "alice", "bob", "--history", "--data", s.dir)
	tsts, lls := historyEditTrack(t, s, "alice", "alice-pass-123", 4)
	centre := [2]float64{(lls[0][0] + lls[3][0]) / 2, (lls[0][1] + lls[3][1]) / 2}

	b.login(s, "bob", "bob-pass-123")
	b.waitFor("logged in", `document.body.dataset.user === 'bob'`)
	b.showHistoryOf("alice", "phone")
	b.waitFor("alice's four points", statPoints+` === '4'`)
	if !eval[bool](b, `document.querySelector('#history-edit').hidden`) {
		t.Error("bob is shown the clean-up controls of alice's track")
	}
	b.clickTrackPoint(lls[1], centre)
	b.waitFor("the popup of point 1", fmt.Sprintf(`document.querySelector('#history-point')?.dataset.tst === '%d'`, tsts[1]))
	if eval[bool](b, `!!document.querySelector('#history-point-hide, #history-point-delete')`) {
		t.Error("bob's popup of alice's point has hide or delete buttons")
	}

	// The API refuses him whatever the page shows, with a reason.
	point := fmt.Sprintf("/api/v1/locations/alice/phone/%d", tsts[1])
	from, to := fmt.Sprint(tsts[0]-1), fmt.Sprint(tsts[3]+1)
	for _, r := range []struct{ method, path string }{
		{http.MethodDelete, point},
		{http.MethodPost, point + "/hide"},
		{http.MethodGet, point},
		{http.MethodDelete, "/api/v1/locations?user=alice&device=phone&from=" + from + "&to=" + to},
		{http.MethodGet, "/api/v1/locations/hidden?user=alice&device=phone"},
	} {
		code, body := s.send(r.method, "bob", "bob-pass-123", r.path, "")
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if code != http.StatusForbidden || !strings.Contains(e.Error, "owner or an admin") {
			t.Errorf("bob %s %s: %d %s, want 403 saying only the owner or an admin may", r.method, r.path, code, body)
		}
	}
	if got := storedTSTs(t, s, "alice", "alice-pass-123", "alice"); !slices.Equal(got, tsts) {
		t.Errorf("alice's track after bob's attempts: %v, want %v", got, tsts)
	}

	// An admin may change anyone's history: the controls are there.
	b.run("sign bob out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor("signed out", `!document.body.dataset.user`)
	b.login(s, "admin", adminPassword)
	b.waitFor("logged in as admin", `document.body.dataset.user === 'admin' && document.body.dataset.admin === 'true'`)
	b.showHistoryOf("alice", "phone")
	b.waitFor("the clean-up controls for the admin", `!document.querySelector('#history-edit').hidden`)
	b.clickTrackPoint(lls[1], centre)
	b.waitFor("the admin's popup with the buttons", `document.querySelector('#history-point #history-point-delete')`)
}
