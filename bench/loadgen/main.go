package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wherehouse/wherehouse/bench/track"
)

// Defaults of the flags.
const (
	DefaultBroker       = "tcp://127.0.0.1:1883"
	DefaultPublishers   = 10
	DefaultMessages     = 1000
	DefaultInflight     = 200
	DefaultTopic        = "owntracks/load{n}/dev{n}"
	DefaultSubTopic     = "owntracks/#"
	DefaultTSTStep      = 1
	DefaultTimeout      = 120 * time.Second
	DefaultQueryWorkers = 1

	// storedSeries is the counter -metrics watches.
	storedSeries = `wherehouse_messages_stored_total{type="location"}`
	// pollInterval is how often -metrics scrapes while waiting.
	pollInterval = 20 * time.Millisecond
)

type config struct {
	Name         string
	Broker       string
	User         string
	Password     string
	Publishers   int
	Messages     int
	QoS          int
	Inflight     int
	Retain       bool
	Topic        string
	TSTStart     int64
	TSTStep      int64
	CountSub     bool
	SubTopic     string
	Expect       int
	Metrics      string
	HTTPUser     string
	HTTPPassword string
	QueryBase    string
	QueryParams  string
	QueryWorkers int
	Timeout      time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Name, "name", "load", "label printed in the RESULT line")
	fs.StringVar(&cfg.Broker, "broker", DefaultBroker, "MQTT broker URL")
	fs.StringVar(&cfg.User, "user", "", "MQTT user name (wherehouse: admin may publish to any owntracks/ topic)")
	fs.StringVar(&cfg.Password, "password", "", "MQTT password")
	fs.IntVar(&cfg.Publishers, "publishers", DefaultPublishers, "publisher connections; 0 with -count-sub only counts")
	fs.IntVar(&cfg.Messages, "messages", DefaultMessages, "messages per publisher")
	fs.IntVar(&cfg.QoS, "qos", 1, "QoS of publishes and of the -count-sub subscription")
	fs.IntVar(&cfg.Inflight, "inflight", DefaultInflight, "most unacknowledged messages per publisher")
	fs.BoolVar(&cfg.Retain, "retain", true, "publish retained, as the OwnTracks apps do")
	fs.StringVar(&cfg.Topic, "topic", DefaultTopic, "topic per publisher; {n} is the publisher's number from 0")
	fs.Int64Var(&cfg.TSTStart, "tst-start", 0, "tst of each publisher's first fix, UNIX seconds (0: so the last fix is now)")
	fs.Int64Var(&cfg.TSTStep, "tst-step", DefaultTSTStep, "seconds between consecutive fixes of one publisher")
	fs.BoolVar(&cfg.CountSub, "count-sub", false, "subscribe to -sub-topic before publishing and count deliveries")
	fs.StringVar(&cfg.SubTopic, "sub-topic", DefaultSubTopic, "topic filter of -count-sub")
	fs.IntVar(&cfg.Expect, "expect", 0, "deliveries -count-sub waits for (default publishers × messages)")
	fs.StringVar(&cfg.Metrics, "metrics", "", "wherehouse /metrics URL: wait until the stored counter grows by the messages acknowledged")
	fs.StringVar(&cfg.HTTPUser, "http-user", "", "HTTP basic-auth user for -metrics and -query-base (default -user)")
	fs.StringVar(&cfg.HTTPPassword, "http-password", "", "HTTP basic-auth password (default -password)")
	fs.StringVar(&cfg.QueryBase, "query-base", "", "wherehouse base URL: query /api/0/last and /api/0/locations while publishing")
	fs.StringVar(&cfg.QueryParams, "query-params", "", "query string for the queries, e.g. user=load0&device=dev0&from=...&to=...")
	fs.IntVar(&cfg.QueryWorkers, "query-workers", DefaultQueryWorkers, "concurrent query loops")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; all settings are flags (see -h)", fs.Args())
	}
	if err := cfg.check(); err != nil {
		return err
	}
	res, err := bench(ctx, cfg, stderr)
	fmt.Fprintln(stdout, res.line())
	return err
}

func (c *config) check() error {
	switch {
	case c.Publishers < 0 || c.Messages < 0:
		return errors.New("-publishers and -messages must not be negative")
	case c.Publishers == 0 && !c.CountSub:
		return errors.New("nothing to do: set -publishers or -count-sub")
	case c.QoS < 0 || c.QoS > 2:
		return errors.New("-qos must be 0, 1 or 2")
	case c.Inflight < 1:
		return errors.New("-inflight must be at least 1")
	case c.TSTStep < 0:
		return errors.New("-tst-step must not be negative")
	case c.QueryBase != "" && c.QueryParams == "":
		return errors.New("-query-base needs -query-params (user=...&device=...)")
	case c.QueryWorkers < 1:
		return errors.New("-query-workers must be at least 1")
	}
	if c.HTTPUser == "" {
		c.HTTPUser = c.User
	}
	if c.HTTPPassword == "" {
		c.HTTPPassword = c.Password
	}
	if c.Expect == 0 {
		c.Expect = c.Publishers * c.Messages
	}
	if c.TSTStart == 0 {
		c.TSTStart = time.Now().Unix() - int64(c.Messages)*c.TSTStep
	}
	return nil
}

// result is what one run measured; zero parts did not run.
type result struct {
	name     string
	complete bool

	sent, acked, errors int
	seconds             float64 // first publish to last ack
	latencies           []time.Duration

	sub        bool
	subMsgs    int
	subSeconds float64 // first publish (or first delivery without publishers) to last delivery counted

	stored       bool
	storedDelta  int
	storeSeconds float64 // first publish to the counter reaching the messages acknowledged

	query                bool
	queries, queryErrors int
	querySeconds         float64
	queryLatencies       []time.Duration
	queryPoints          int
}

func (r *result) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "RESULT name=%s msgs=%d seconds=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d complete=%t",
		r.name, r.acked, r.seconds, rate(r.acked, r.seconds),
		ms(percentile(r.latencies, 0.50)), ms(percentile(r.latencies, 0.99)), r.errors, r.complete)
	if r.sub {
		fmt.Fprintf(&b, " sub_msgs=%d sub_seconds=%.3f sub_rate=%.0f", r.subMsgs, r.subSeconds, rate(r.subMsgs, r.subSeconds))
	}
	if r.stored {
		fmt.Fprintf(&b, " stored=%d store_seconds=%.3f store_rate=%.0f", r.storedDelta, r.storeSeconds, rate(r.storedDelta, r.storeSeconds))
	}
	if r.query {
		fmt.Fprintf(&b, " queries=%d qps=%.1f q_p50_ms=%.2f q_p99_ms=%.2f q_errors=%d q_points=%d",
			r.queries, rate(r.queries, r.querySeconds),
			ms(percentile(r.queryLatencies, 0.50)), ms(percentile(r.queryLatencies, 0.99)), r.queryErrors, r.queryPoints)
	}
	return b.String()
}

func rate(n int, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / seconds
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile sorts d in place and returns the nearest-rank percentile.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// bench runs one measurement. It always returns what it measured; the error
// says why the run is incomplete.
func bench(ctx context.Context, cfg config, stderr io.Writer) (res *result, err error) {
	res = &result{name: cfg.Name}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	hc := &http.Client{Timeout: 30 * time.Second}

	var baseline float64
	if cfg.Metrics != "" {
		res.stored = true
		if baseline, err = scrape(ctx, hc, cfg); err != nil {
			return res, err
		}
	}

	var sub *counter
	if cfg.CountSub {
		res.sub = true
		if sub, err = subscribe(ctx, cfg); err != nil {
			return res, err
		}
		defer sub.client.Disconnect(100)
	}

	pubs := make([]*publisher, cfg.Publishers)
	for i := range pubs {
		if pubs[i], err = connect(ctx, cfg, i); err != nil {
			for _, p := range pubs[:i] {
				p.client.Disconnect(100)
			}
			return res, err
		}
	}
	defer func() {
		for _, p := range pubs {
			p.client.Disconnect(250)
		}
	}()

	// All publishers are connected: the clock starts now.
	start := time.Now()
	if sub != nil {
		sub.start(start, cfg.Publishers > 0)
	}

	var queries *querier
	qctx, stopQueries := context.WithCancel(ctx)
	defer stopQueries()
	if cfg.QueryBase != "" {
		res.query = true
		queries = startQueries(qctx, hc, cfg)
	}

	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Go(func() { p.run(ctx) })
	}
	wg.Wait()
	var lastAck time.Time
	for _, p := range pubs {
		res.sent += p.sent
		res.acked += p.acked
		res.errors += p.errors
		res.latencies = append(res.latencies, p.latencies...)
		if p.lastAck.After(lastAck) {
			lastAck = p.lastAck
		}
	}
	if !lastAck.IsZero() {
		res.seconds = lastAck.Sub(start).Seconds()
	}
	var errs []error
	if res.acked < cfg.Publishers*cfg.Messages {
		errs = append(errs, fmt.Errorf("%d of %d messages acknowledged, %d errors", res.acked, cfg.Publishers*cfg.Messages, res.errors))
	}

	if queries != nil {
		stopQueries()
		queries.wait()
		res.queries, res.queryErrors = queries.n, queries.errors
		res.querySeconds = time.Since(start).Seconds()
		res.queryLatencies = queries.latencies
		res.queryPoints = queries.points
		if queries.err != nil {
			errs = append(errs, queries.err)
		}
	}

	if sub != nil {
		n, at := sub.wait(ctx, cfg.Expect)
		res.subMsgs = n
		if !at.IsZero() {
			res.subSeconds = at.Sub(sub.t0).Seconds()
		}
		if n < cfg.Expect {
			errs = append(errs, fmt.Errorf("subscriber counted %d of %d messages", n, cfg.Expect))
		}
	}

	if cfg.Metrics != "" {
		delta, at, err := waitStored(ctx, hc, cfg, baseline, res.acked)
		res.storedDelta = delta
		if !at.IsZero() {
			res.storeSeconds = at.Sub(start).Seconds()
		}
		if err != nil {
			errs = append(errs, err)
		} else if delta != res.acked {
			errs = append(errs, fmt.Errorf("stored counter grew by %d, %d messages acknowledged", delta, res.acked))
		}
	}

	res.complete = len(errs) == 0
	switch cerr := ctx.Err(); {
	case res.complete || cerr == nil:
	case errors.Is(cerr, context.DeadlineExceeded):
		errs = append(errs, fmt.Errorf("gave up after -timeout %s: %w", cfg.Timeout, cerr))
	default:
		errs = append(errs, fmt.Errorf("interrupted: %w", cerr))
	}
	return res, errors.Join(errs...)
}

func clientOptions(cfg config, id string) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(id).
		SetUsername(cfg.User).
		SetPassword(cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetKeepAlive(60 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(30 * time.Second)
	return o
}

func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publisher is one connection publishing one device's track.
type publisher struct {
	cfg    config
	client paho.Client
	topic  string
	gen    *fixes

	sent, acked, errors int
	latencies           []time.Duration
	lastAck             time.Time
}

func connect(ctx context.Context, cfg config, n int) (*publisher, error) {
	id := fmt.Sprintf("loadgen-%s-%d-%d", cfg.Name, os.Getpid(), n)
	c := paho.NewClient(clientOptions(cfg, id))
	if err := waitToken(ctx, c.Connect()); err != nil {
		return nil, fmt.Errorf("connect publisher %d to %s: %w (is the broker up? are -user/-password right?)", n, cfg.Broker, err)
	}
	return &publisher{
		cfg: cfg, client: c,
		topic:     strings.ReplaceAll(cfg.Topic, "{n}", strconv.Itoa(n)),
		gen:       newTrack(n, cfg.TSTStart, cfg.TSTStep),
		latencies: make([]time.Duration, 0, cfg.Messages),
	}, nil
}

type pending struct {
	tok paho.Token
	at  time.Time
}

// run publishes asynchronously; a semaphore of -inflight slots is taken
// per publish and given back when the broker acknowledges. Acks arrive in
// order (MQTT-4.6.0-2), so one waiter per publisher sees each as it lands.
func (p *publisher) run(ctx context.Context) {
	sem := make(chan struct{}, p.cfg.Inflight)
	queue := make(chan pending, p.cfg.Inflight)
	var wg sync.WaitGroup
	wg.Go(func() {
		for q := range queue {
			select {
			case <-q.tok.Done():
			case <-ctx.Done():
				p.errors++
				<-sem
				continue
			}
			now := time.Now()
			if q.tok.Error() != nil {
				p.errors++
			} else {
				p.acked++
				p.latencies = append(p.latencies, now.Sub(q.at))
				p.lastAck = now
			}
			<-sem
		}
	})
	defer wg.Wait()
	defer close(queue)
	for range p.cfg.Messages {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		payload := p.gen.next()
		queue <- pending{tok: p.client.Publish(p.topic, byte(p.cfg.QoS), p.cfg.Retain, payload), at: time.Now()}
		p.sent++
	}
}

// fixes is one device's payloads: bench/track's walk, a fix every step
// seconds from tstStart.
type fixes struct {
	walk *track.Track
	step int64
	buf  []byte
}

func newTrack(n int, tstStart, step int64) *fixes {
	return &fixes{walk: track.New(n, 0x6c6f616467656e, tstStart-step), step: step, buf: make([]byte, 0, 256)}
}

// next returns a new payload; it is not reused, since paho keeps it until
// the message is acknowledged.
func (t *fixes) next() []byte {
	t.buf = t.walk.AppendFix(t.buf[:0], t.step)
	return slices.Clone(t.buf)
}

// counter is the -count-sub subscriber.
type counter struct {
	client paho.Client
	n      atomic.Int64
	mu     sync.Mutex
	t0     time.Time // clock start: first publish, or first delivery
	last   time.Time // time of the latest delivery
	first  bool      // t0 is set at the first delivery
	notify chan struct{}
}

func subscribe(ctx context.Context, cfg config) (*counter, error) {
	c := &counter{notify: make(chan struct{}, 1)}
	id := fmt.Sprintf("loadgen-%s-%d-sub", cfg.Name, os.Getpid())
	// The handler only counts; in order on paho's router goroutine, so it
	// acknowledges each delivery as soon as it is counted.
	opts := clientOptions(cfg, id).SetOrderMatters(true)
	c.client = paho.NewClient(opts)
	if err := waitToken(ctx, c.client.Connect()); err != nil {
		return nil, fmt.Errorf("connect subscriber to %s: %w", cfg.Broker, err)
	}
	if err := waitToken(ctx, c.client.Subscribe(cfg.SubTopic, byte(cfg.QoS), c.onMessage)); err != nil {
		c.client.Disconnect(100)
		return nil, fmt.Errorf("subscribe to %s: %w", cfg.SubTopic, err)
	}
	return c, nil
}

func (c *counter) start(t time.Time, publishing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if publishing {
		c.t0 = t
	} else {
		c.first = true
	}
}

func (c *counter) onMessage(_ paho.Client, _ paho.Message) {
	now := time.Now()
	c.mu.Lock()
	if c.first && c.t0.IsZero() {
		c.t0 = now
	}
	c.last = now
	c.mu.Unlock()
	c.n.Add(1)
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wait returns once expect deliveries were counted or ctx ends, with the
// count and the time of the last delivery counted.
func (c *counter) wait(ctx context.Context, expect int) (int, time.Time) {
	for int(c.n.Load()) < expect {
		select {
		case <-c.notify:
		case <-ctx.Done():
			c.mu.Lock()
			defer c.mu.Unlock()
			return int(c.n.Load()), c.last
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.n.Load()), c.last
}

// scrape reads the stored-locations counter from wherehouse's /metrics.
func scrape(ctx context.Context, hc *http.Client, cfg config) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Metrics, nil)
	if err != nil {
		return 0, fmt.Errorf("metrics url %q: %w", cfg.Metrics, err)
	}
	req.SetBasicAuth(cfg.HTTPUser, cfg.HTTPPassword)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", cfg.Metrics, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s (metrics need an admin's -http-user/-http-password)", cfg.Metrics, resp.Status)
	}
	return parseCounter(resp.Body, storedSeries)
}

// parseCounter finds series in a Prometheus text exposition; a series not
// yet exposed (nothing stored so far) counts as 0.
func parseCounter(r io.Reader, series string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", series, err)
		}
		return v, nil
	}
	return 0, sc.Err()
}

// waitStored polls /metrics until the counter has grown by want since
// baseline, and returns the growth and when it was seen.
func waitStored(ctx context.Context, hc *http.Client, cfg config, baseline float64, want int) (int, time.Time, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		v, err := scrape(ctx, hc, cfg)
		at := time.Now()
		if err != nil {
			return 0, time.Time{}, err
		}
		delta := int(v - baseline)
		if delta >= want {
			return delta, at, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return delta, time.Time{}, fmt.Errorf("stored counter grew by %d of %d before the timeout", delta, want)
		}
	}
}

// querier runs the HTTP query loops.
type querier struct {
	wg        sync.WaitGroup
	mu        sync.Mutex
	n, errors int
	points    int // points in the last /api/0/locations answer
	latencies []time.Duration
	err       error
}

func startQueries(ctx context.Context, hc *http.Client, cfg config) *querier {
	q := &querier{}
	base := strings.TrimSuffix(cfg.QueryBase, "/")
	urls := []string{base + "/api/0/last?" + cfg.QueryParams, base + "/api/0/locations?" + cfg.QueryParams}
	for range cfg.QueryWorkers {
		q.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				u := urls[i%len(urls)]
				t := time.Now()
				body, err := get(ctx, hc, u, cfg)
				if ctx.Err() != nil {
					return // cut short by the end of the run: not counted
				}
				d := time.Since(t)
				q.mu.Lock()
				q.n++
				q.latencies = append(q.latencies, d)
				if err != nil {
					q.errors++
					if q.err == nil {
						q.err = err
					}
				} else if strings.Contains(u, "/locations?") {
					q.points = countPoints(body)
				}
				q.mu.Unlock()
			}
		})
	}
	return q
}

func (q *querier) wait() { q.wg.Wait() }

func get(ctx context.Context, hc *http.Client, u string, cfg config) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("query url %q: %w", u, err)
	}
	req.SetBasicAuth(cfg.HTTPUser, cfg.HTTPPassword)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query %s: %s", u, resp.Status)
	}
	return body, nil
}

// countPoints reads "count" from a Recorder /api/0/locations answer.
func countPoints(body []byte) int {
	const key = `"count":`
	i := strings.LastIndex(string(body), key)
	if i < 0 {
		return 0
	}
	rest := body[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(string(rest[:j]))
	return n
}
