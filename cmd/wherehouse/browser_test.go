package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The web app is tested in a real headless Chromium, driven with chromedp,
// against the real server. It needs the app built into the binary
// (frontend/dist, as `make build` does) and Debian's chromium.

// browser is one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := needTool(t, "chromium", "chromium")
	if !webappBuilt() {
		msg := "web app not built: run make frontend (npm) first"
		if os.Getenv("WHEREHOUSE_TEST_STRICT") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// run runs actions with a deadline and fails the test on error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.page())
	}
}

// page is a short dump of the page for failure messages.
func (b *browser) page() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href, body: {...document.body.dataset},
		message: document.querySelector('#message')?.innerText, text: document.body.innerText.slice(0, 600)})`))
	return "\npage: " + s
}

// eval evaluates a JavaScript expression and returns its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v%s", expr, err, b.page())
	}
	return v
}

// do runs a JavaScript statement.
func do(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any]("(() => { "+expr+"; return null })()")(ctx, t)
		return err
	})
}

// waitFor polls a JavaScript condition until it is true.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s (%s): %v%s", what, cond, err, b.page())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// login opens the app and signs in through the form.
func (b *browser) login(s *testServer, user, password string) {
	b.t.Helper()
	b.run("open the app", chromedp.Navigate(s.url("/")), chromedp.WaitVisible(chromedp.CSS("#login-user")))
	b.run("log in",
		chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")))
}

func TestBrowserLogin(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")

	b.login(s, "alice", "wrong-password")
	b.waitFor("the login error", `document.querySelector('#login-error')?.innerText.trim().length > 0`)
	if user := eval[string](b, `document.body.dataset.user || ''`); user != "" {
		t.Fatalf("logged in as %q with a wrong password", user)
	}

	b.run("clear the form", do(`document.querySelector('#login-user').value = '';
		document.querySelector('#login-password').value = ''`))
	b.login(s, "alice", "alice-pass-123")
	b.waitFor("logged in", `document.body.dataset.user === 'alice'`)
	// The session survives a reload (cookie), and logout ends it.
	b.run("reload", chromedp.Reload())
	b.waitFor("still logged in", `document.body.dataset.user === 'alice'`)
	b.run("log out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor("the login form again", `getComputedStyle(document.querySelector('#login')).display !== 'none' && !document.body.dataset.user`)
	b.run("reload", chromedp.Reload())
	b.waitFor("logged out after reload", `document.querySelector('#login-user') && !document.body.dataset.user`)
}

func TestBrowserLiveMap(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, t.TempDir())
	for _, u := range []string{"alice", "bob", "dave"} {
		s.addUser(u, u+"-pass-123")
	}
	runCLI(t, "", "share", "bob", "alice", "--data", s.dir)
	now := time.Now().Unix()
	alice := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	bob := mustMQTT(t, "tcp://"+s.MQTT, "bob-phone", "bob", "bob-pass-123")
	dave := mustMQTT(t, "tcp://"+s.MQTT, "dave-phone", "dave", "dave-pass-123")
	publish(t, alice, "owntracks/alice/phone", 1, true, location(52.52, 13.40, now, "al"))
	publish(t, bob, "owntracks/bob/phone", 1, true, location(52.50, 13.42, now, "bo"))
	publish(t, dave, "owntracks/dave/phone", 1, true, location(52.51, 13.41, now, "da"))

	b.login(s, "alice", "alice-pass-123")
	b.waitFor("alice's and bob's markers", `document.querySelector('.wh-marker[data-key="alice/phone"]') && document.querySelector('.wh-marker[data-key="bob/phone"]')`)
	b.waitFor("the live connection", `document.querySelector('#live')?.dataset.state === 'open'`)
	// A new location moves bob's marker, live.
	publish(t, bob, "owntracks/bob/phone", 1, true, location(52.4567, 13.4321, now+60, "bo"))
	b.waitFor("bob's marker moved", `Math.abs(parseFloat(document.querySelector('.wh-marker[data-key="bob/phone"]').dataset.lat) - 52.4567) < 1e-6`)
	// Dave shares nothing with alice: never on her map or list.
	publish(t, dave, "owntracks/dave/phone", 1, true, location(52.515, 13.415, now+61, "da"))
	publish(t, alice, "owntracks/alice/phone", 1, true, location(52.521, 13.401, now+62, "al"))
	b.waitFor("alice's own update", `Math.abs(parseFloat(document.querySelector('.wh-marker[data-key="alice/phone"]').dataset.lat) - 52.521) < 1e-6`)
	if eval[bool](b, `!!document.querySelector('[data-key^="dave/"]') || document.body.innerText.includes('dave')`) {
		t.Error("alice's page shows dave, who shares nothing with her")
	}
}

func TestBrowserHistory(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")
	alice := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	fixes := track(t, "walk-home.jsonl", time.Now().Unix()-60)
	for _, p := range fixes {
		publish(t, alice, "owntracks/alice/phone", 1, false, p)
	}
	b.login(s, "alice", "alice-pass-123")
	b.waitFor("logged in", `document.body.dataset.user === 'alice'`)
	b.run("open history", chromedp.Click(chromedp.CSS("#nav-history")))
	b.waitFor("history view", `document.body.dataset.view === 'history'`)
	b.waitFor("alice in the person list", `[...document.querySelectorAll('#history-user option')].some(o => o.value === 'alice')`)
	b.run("pick alice", chromedp.SetValue(chromedp.CSS("#history-user"), "alice"),
		do(`document.querySelector('#history-user').dispatchEvent(new Event('change', {bubbles: true}))`))
	b.waitFor("phone in the device list", `[...document.querySelectorAll('#history-device option')].some(o => o.value === 'phone')`)
	b.run("pick phone, last 7 days", chromedp.SetValue(chromedp.CSS("#history-device"), "phone"),
		do(`document.querySelector('#history-device').dispatchEvent(new Event('change', {bubbles: true}))`),
		chromedp.Click(chromedp.CSS("#history-7d")))
	b.waitFor("the track", `document.body.dataset.historyState === 'ready'`)
	stats := eval[map[string]string](b, `({...document.querySelector('#history-stats').dataset})`)
	if stats["total"] != fmt.Sprint(len(fixes)) || stats["points"] == "" || stats["points"] == "0" {
		t.Errorf("history stats %v, want %d points in all", stats, len(fixes))
	}
	href := eval[string](b, `document.querySelector('#download-gpx').getAttribute('href')`)
	if !strings.Contains(href, "format=gpx") || !strings.Contains(href, "user=alice") {
		t.Errorf("gpx download link %q", href)
	}
}

func TestBrowserDrawFence(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, t.TempDir())
	s.addUser("alice", "alice-pass-123")
	b.login(s, "alice", "alice-pass-123")
	b.waitFor("logged in", `document.body.dataset.user === 'alice'`)
	b.run("open fences", chromedp.Click(chromedp.CSS("#nav-fences")))
	b.waitFor("fences view", `document.body.dataset.view === 'fences'`)
	b.run("centre the map", do(`whMap.setView([52.52, 13.40], 15, {animate: false})`))
	// Draw a circle: click its centre, then a point on its edge.
	pts := eval[[]struct{ X, Y float64 }](b, `(() => { const r = whMap.getContainer().getBoundingClientRect();
		return [[52.52, 13.40], [52.52, 13.405]].map(ll => { const p = whMap.latLngToContainerPoint(ll);
			return {X: p.x + r.left, Y: p.y + r.top}; }); })()`)
	b.run("draw a circle", chromedp.Click(chromedp.CSS("#fence-draw-circle")),
		chromedp.MouseClickXY(pts[0].X, pts[0].Y), chromedp.MouseClickXY(pts[1].X, pts[1].Y))
	b.waitFor("the fence form", `document.querySelector('#fence-name') && document.querySelector('#fence-name').offsetParent !== null`)
	b.run("name and save", chromedp.SendKeys(chromedp.CSS("#fence-name"), "Drawn home"), chromedp.Click(chromedp.CSS("#fence-save")))
	b.waitFor("the fence in the list", `document.querySelector('#fences li[data-fence-id]')`)
	var fc struct {
		Features []struct {
			Geometry   struct{ Type string }
			Properties map[string]any
		}
	}
	s.getJSON("alice", "alice-pass-123", "/api/v1/fences", &fc)
	if len(fc.Features) != 1 || fc.Features[0].Properties["name"] != "Drawn home" || fc.Features[0].Geometry.Type != "Point" {
		t.Fatalf("fences in the API: %+v", fc)
	}
	// About 340 m: 0.005° of longitude at 52.52°N.
	if r, _ := fc.Features[0].Properties["radius"].(float64); r < 250 || r > 450 {
		t.Errorf("radius %v, want about 340 m", fc.Features[0].Properties["radius"])
	}
}

// tileServer serves plain map-like tiles (a street grid on a light ground)
// so screenshots look like a map without reaching the internet.
func tileServer(t *testing.T) string {
	t.Helper()
	tile := func() []byte {
		img := image.NewRGBA(image.Rect(0, 0, 256, 256))
		ground := color.RGBA{0xf2, 0xef, 0xe9, 0xff}
		street := color.RGBA{0xff, 0xff, 0xff, 0xff}
		block := color.RGBA{0xe4, 0xe0, 0xd8, 0xff}
		for y := range 256 {
			for x := range 256 {
				c := ground
				switch {
				case x%64 < 6 || y%64 < 6:
					c = street
				case (x/64+y/64)%3 == 0 && x%64 > 12 && x%64 < 58 && y%64 > 12 && y%64 < 58:
					c = block
				}
				img.Set(x, y, c)
			}
		}
		var buf bytes.Buffer
		png.Encode(&buf, img)
		return buf.Bytes()
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(tile)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/{z}/{x}/{y}.png"
}

// TestScreenshots writes the README's screenshots when
// WHEREHOUSE_SCREENSHOTS names a directory (make screenshots).
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("WHEREHOUSE_SCREENSHOTS")
	if dir == "" {
		t.Skip("set WHEREHOUSE_SCREENSHOTS=DIR (make screenshots) to write the README's screenshots")
	}
	b := newBrowser(t)
	s := startServer(t, t.TempDir(), "--tile-url", tileServer(t), "--tile-attribution", "demo tiles")
	for _, u := range []string{"alice", "bob", "carol"} {
		s.addUser(u, u+"-pass-123")
	}
	runCLI(t, "", "group", "set", "family", "alice", "bob", "carol", "--data", s.dir)
	runCLI(t, "", "fence", "add", "Home", "--user", "alice", "--circle", "52.538,13.424,100", "--shared", "--data", s.dir)
	runCLI(t, "", "fence", "add", "Office", "--user", "alice", "--circle", "52.52,13.388,100", "--data", s.dir)
	now := time.Now().Unix()
	alice := mustMQTT(t, "tcp://"+s.MQTT, "alice-phone", "alice", "alice-pass-123")
	for _, p := range track(t, "walk-home.jsonl", now-600) {
		publish(t, alice, "owntracks/alice/phone", 1, true, p)
	}
	for _, p := range []struct {
		user      string
		lat, lon  float64
		tid, name string
		ago, batt int64
	}{
		{"bob", 52.5251, 13.4094, "bo", "Bob", 120, 64},
		{"carol", 52.5310, 13.3920, "ca", "Carol", 1800, 23},
	} {
		c := mustMQTT(t, "tcp://"+s.MQTT, p.user+"-phone", p.user, p.user+"-pass-123")
		publish(t, c, "owntracks/"+p.user+"/phone", 1, true, fmt.Sprintf(`{"_type":"card","name":%q,"tid":%q}`, p.name, p.tid))
		publish(t, c, "owntracks/"+p.user+"/phone", 1, true,
			fmt.Sprintf(`{"_type":"location","lat":%v,"lon":%v,"tst":%d,"tid":%q,"acc":25,"batt":%d,"vel":4,"conn":"m"}`, p.lat, p.lon, now-p.ago, p.tid, p.batt))
	}
	os.MkdirAll(dir, 0o755)
	shot := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.login(s, "alice", "alice-pass-123")
	b.waitFor("markers", `document.querySelectorAll('.wh-marker').length >= 3`)
	b.run("show everyone", do(`[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Show all').click()`))
	b.run("open a popup", do(`document.querySelector('.wh-marker[data-key="bob/phone"]').click()`))
	b.waitFor("the popup shown", `document.querySelector('.leaflet-popup') && getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'`)
	b.waitFor("tiles", `[...document.querySelectorAll('.leaflet-tile')].every(i => i.complete)`)
	shot("live.png")

	b.run("open history", chromedp.Click(chromedp.CSS("#nav-history")))
	b.waitFor("alice in the person list", `[...document.querySelectorAll('#history-user option')].some(o => o.value === 'alice')`)
	b.run("pick alice", chromedp.SetValue(chromedp.CSS("#history-user"), "alice"),
		do(`document.querySelector('#history-user').dispatchEvent(new Event('change', {bubbles: true}))`))
	b.waitFor("phone in the device list", `[...document.querySelectorAll('#history-device option')].some(o => o.value === 'phone')`)
	b.run("today", chromedp.SetValue(chromedp.CSS("#history-device"), "phone"),
		do(`document.querySelector('#history-device').dispatchEvent(new Event('change', {bubbles: true}))`),
		chromedp.Click(chromedp.CSS("#history-today")))
	b.waitFor("the track", `document.body.dataset.historyState === 'ready'`)
	b.waitFor("tiles", `[...document.querySelectorAll('.leaflet-tile')].every(i => i.complete)`)
	shot("history.png")

	b.run("open fences", chromedp.Click(chromedp.CSS("#nav-fences")))
	b.waitFor("fences listed", `document.querySelectorAll('#fences li[data-fence-id]').length === 2`)
	b.run("frame the fences", do(`whMap.setView([52.529, 13.405], 14, {animate: false})`))
	b.waitFor("tiles", `[...document.querySelectorAll('.leaflet-tile')].every(i => i.complete)`)
	shot("fences.png")
}
