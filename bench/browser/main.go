// Command browser measures the web app in headless Chromium for
// `make bench`: how long the history view takes to open a year of one
// device (about 1,000,000 points), against the baseline of downloading
// that year unsimplified, and how smooth the live view stays with 500
// people moving.
//
// It writes the store directly (a year of fixes every 30 s, and 500
// people's last positions), starts the given wherehouse binary on it with
// loopback ports, drives Chromium with chromedp, and prints one line of
// key=value results. Everything it starts, it stops.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

const password = "bench-browser-1"

type config struct {
	bin, chromium string
	points        int
	people        int
	runs          int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.bin, "bin", "bin/wherehouse", "wherehouse binary built with the web app (make build)")
	flag.StringVar(&cfg.chromium, "chromium", "chromium", "Chromium binary")
	flag.IntVar(&cfg.points, "points", 365*24*120, "points in the year of history (one per 30 s)")
	flag.IntVar(&cfg.people, "people", 500, "people on the live map")
	flag.IntVar(&cfg.runs, "runs", 3, "times to open the history view (the median is reported)")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "browser bench:", err)
		os.Exit(1)
	}
}

// yearStart is 2025-01-01T00:00:00Z: the year device's first fix.
const yearStart = 1735689600

func run(cfg config) error {
	dir, err := os.MkdirTemp("", "wherehouse-browser-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	if err := load(dir, cfg); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loaded %d points and %d people in %s\n", cfg.points, cfg.people, time.Since(t0).Round(time.Millisecond))

	tiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(blankPNG)
	}))
	defer tiles.Close()
	srv, err := startServer(cfg.bin, dir, tiles.URL+"/{z}/{x}/{y}.png")
	if err != nil {
		return err
	}
	defer srv.stop()

	res := map[string]string{}
	// Baseline: the year as the Recorder's frontend would fetch it, whole.
	q := "/api/0/locations?user=year&device=phone&from=2025-01-01T00:00:00&to=2025-12-31T23:59:59"
	full, fullBytes, err := timeGet(srv.url + q + "&format=json")
	if err != nil {
		return err
	}
	res["full_ms"] = ms(full)
	res["full_mib"] = fmt.Sprintf("%.0f", float64(fullBytes)/(1<<20))
	simp, _, err := timeGet(srv.url + q + "&format=json&max_points=5000")
	if err != nil {
		return err
	}
	res["simplified_ms"] = ms(simp)

	b, stop, err := newBrowser(cfg.chromium)
	if err != nil {
		return err
	}
	defer stop()
	if err := b.do(chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.SendKeys(chromedp.CSS("#login-user"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit"))); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	// Live view: time until every person's marker is on the map.
	start := time.Now()
	if err := b.waitFor(fmt.Sprintf(`document.querySelectorAll('.wh-marker').length >= %d`, cfg.people+1), time.Minute); err != nil {
		return err
	}
	res["live_markers_ms"] = ms(time.Since(start))
	if err := b.waitFor(`document.querySelector('#live')?.dataset.state === 'open'`, 30*time.Second); err != nil {
		return err
	}
	idle, err := b.fps(3 * time.Second)
	if err != nil {
		return err
	}
	res["idle_fps"] = fmt.Sprintf("%.0f", idle)
	// Everyone moves: 500 updates a second for 5 s, posted over HTTP mode.
	moving := make(chan error, 1)
	go func() { moving <- srv.move(cfg.people, 5*time.Second) }()
	busy, err := b.fps(5 * time.Second)
	if err != nil {
		return err
	}
	if err := <-moving; err != nil {
		return err
	}
	res["live_fps"] = fmt.Sprintf("%.0f", busy)

	// History view: open the year, several times.
	if err := b.do(chromedp.Click(chromedp.CSS("#nav-history"))); err != nil {
		return err
	}
	if err := b.waitFor(`[...document.querySelectorAll('#history-user option')].some(o => o.value === 'year')`, 30*time.Second); err != nil {
		return err
	}
	if err := b.do(chromedp.SetValue(chromedp.CSS("#history-user"), "year"),
		do(`document.querySelector('#history-user').dispatchEvent(new Event('change', {bubbles: true}))`)); err != nil {
		return err
	}
	if err := b.waitFor(`[...document.querySelectorAll('#history-device option')].some(o => o.value === 'phone')`, 30*time.Second); err != nil {
		return err
	}
	var times []float64
	var points string
	for range cfg.runs {
		v, err := b.eval(`(async () => {
			const set = (id, v) => { const el = document.querySelector(id); el.value = v; el.dispatchEvent(new Event('change', {bubbles: true})); };
			set('#history-device', 'phone');
			set('#history-from', '2025-01-01T00:00');
			set('#history-to', '2025-12-31T23:59');
			document.body.dataset.historyState = '';
			await new Promise(r => requestAnimationFrame(r));
			const t0 = performance.now();
			document.querySelector('#history-show').click();
			return await new Promise((res, rej) => {
				const check = () => {
					const s = document.body.dataset.historyState;
					if (s === 'ready') requestAnimationFrame(() => res(JSON.stringify({ms: performance.now() - t0,
						points: document.querySelector('#history-stats').dataset.points,
						total: document.querySelector('#history-stats').dataset.total})));
					else if (s === 'error' || s === 'empty') rej(new Error('history ' + s));
					else if (performance.now() - t0 > 60000) rej(new Error('history not ready after 60 s'));
					else setTimeout(check, 5);
				};
				check();
			});
		})()`)
		if err != nil {
			return fmt.Errorf("open the year: %w", err)
		}
		var r struct {
			MS            float64
			Points, Total string
		}
		json.Unmarshal([]byte(v), &r)
		times = append(times, r.MS)
		points = r.Points + "/" + r.Total
	}
	slices.Sort(times)
	res["history_ms"] = fmt.Sprintf("%.0f", times[len(times)/2])
	res["history_points"] = points
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		out = append(out, k+"="+res[k])
	}
	fmt.Println(strings.Join(out, " "))
	return nil
}

// load writes a year of one device and the last position of each person.
func load(dir string, cfg config) error {
	ctx := context.Background()
	store, err := embedded.Open(ctx, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer store.Close()
	batch := make([]storage.Message, 0, 10000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := store.Append(ctx, batch)
		batch = batch[:0]
		return err
	}
	lat, lon, heading := 52.52, 13.40, 0.0
	for i := range cfg.points {
		tst := int64(yearStart + i*30)
		// A wandering walk that stays around the city.
		heading += math.Sin(float64(i)/97) * 0.3
		lat += math.Cos(heading) * 0.0002
		lon += math.Sin(heading) * 0.0003
		lat = 52.52 + math.Mod(lat-52.52, 0.2)
		lon = 13.40 + math.Mod(lon-13.40, 0.3)
		batch = append(batch, fix("year", "phone", tst, lat, lon))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	now := time.Now().Unix()
	for p := range cfg.people {
		batch = append(batch, fix(fmt.Sprintf("person%03d", p), "phone", now-int64(p), 52.4+float64(p%25)*0.01, 13.2+float64(p/25)*0.02))
	}
	return flush()
}

func fix(user, device string, tst int64, lat, lon float64) storage.Message {
	payload := fmt.Appendf(nil, `{"_type":"location","tid":"%s","tst":%d,"lat":%.6f,"lon":%.6f,"acc":12,"alt":40,"vel":4,"batt":80,"conn":"m"}`,
		user[len(user)-2:], tst, lat, lon)
	return storage.Message{User: user, Device: device, Topic: "owntracks/" + user + "/" + device, Type: "location",
		TST: tst, Received: tst * 1000, Lat: lat, Lon: lon, Payload: payload}
}

type server struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

var listenRE = regexp.MustCompile(`msg=listening service=http addr=(\S+)`)

func startServer(bin, dir, tileURL string) (*server, error) {
	cmd := exec.Command(bin, "serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "off", "--tile-url", tileURL, "--log-level", "info")
	cmd.Env = append(os.Environ(), "WHEREHOUSE_ADMIN_PASSWORD="+password)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 4096)
		for {
			n, err := pr.Read(chunk)
			buf.Write(chunk[:n])
			if m := listenRE.FindSubmatch(buf.Bytes()); m != nil {
				select {
				case addr <- string(m[1]):
				default:
				}
			}
			if err != nil {
				return
			}
			if buf.Len() > 1<<16 {
				buf.Reset()
			}
		}
	}()
	go func() { cmd.Wait(); pw.Close(); close(s.done) }()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		return nil, errors.New("wherehouse exited at start")
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, errors.New("wherehouse did not start within 30 s")
	}
	// Ready when /healthz answers.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			return s, nil
		}
	}
	s.stop()
	return nil, errors.New("wherehouse not healthy within 30 s")
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// move posts a new position for every person once a second for d, from
// 16 concurrent HTTP-mode clients.
func (s *server) move(people int, d time.Duration) error {
	now := time.Now().Unix()
	start := time.Now()
	for round := range int(d / time.Second) {
		jobs := make(chan int)
		errs := make(chan error, 16)
		for range 16 {
			go func() {
				var err error
				for p := range jobs {
					if err == nil {
						err = s.post(p, now+int64(round)+1, round)
					}
				}
				errs <- err
			}()
		}
		for p := range people {
			jobs <- p
		}
		close(jobs)
		var first error
		for range 16 {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
		time.Sleep(time.Until(start.Add(time.Duration(round+1) * time.Second)))
	}
	return nil
}

func (s *server) post(p int, tst int64, round int) error {
	user := fmt.Sprintf("person%03d", p)
	body := fmt.Sprintf(`{"_type":"location","tid":"%s","tst":%d,"lat":%.6f,"lon":%.6f,"acc":10}`,
		user[len(user)-2:], tst, 52.4+float64(p%25)*0.01+float64(round)*0.001, 13.2+float64(p/25)*0.02)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/pub?u="+user+"&d=phone", strings.NewReader(body))
	req.SetBasicAuth("admin", password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /pub: %s", resp.Status)
	}
	return nil
}

func timeGet(url string) (time.Duration, int64, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("admin", password)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return time.Since(start), n, err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

type browser struct{ ctx context.Context }

func newBrowser(bin string) (*browser, func(), error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, nil, fmt.Errorf("%s not found: apt-get install chromium", bin)
	}
	profile, err := os.MkdirTemp("", "wherehouse-chromium")
	if err != nil {
		return nil, nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	stop := func() { cancelTab(); cancelAlloc(); os.RemoveAll(profile) }
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("start chromium: %w", err)
	}
	return &browser{ctx: ctx}, stop, nil
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

func (b *browser) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
}

func do(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any]("(() => { "+expr+"; return null })()")(ctx, t)
		return err
	})
}

func (b *browser) waitFor(cond string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s: %v", cond, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fps counts animation frames the page renders in d (60 on an idle page
// with a 60 Hz clock; fewer when the main thread is busy).
func (b *browser) fps(d time.Duration) (float64, error) {
	v, err := b.eval(fmt.Sprintf(`new Promise(res => { let n = 0; const t0 = performance.now();
		const f = () => { n++; if (performance.now() - t0 < %d) requestAnimationFrame(f); else res(String(n * 1000 / (performance.now() - t0))); };
		requestAnimationFrame(f); })`, d.Milliseconds()))
	if err != nil {
		return 0, err
	}
	var f float64
	fmt.Sscan(v, &f)
	return f, nil
}

// blankPNG is a 1×1 light tile; Leaflet stretches it.
var blankPNG = func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.RGBA{0xf2, 0xef, 0xe9, 0xff})
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}()
