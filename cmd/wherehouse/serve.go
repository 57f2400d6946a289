package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wherehouse/wherehouse/api"
	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/broker"
	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/frontend"
	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
	"github.com/wherehouse/wherehouse/webhook"
)

// Defaults of serve's flags.
const (
	DefaultData      = "./data"
	DefaultHTTP      = ":8083"
	DefaultMQTT      = ":1883"
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"

	// DefaultTileURL and DefaultTileAttribution are the web map's tiles:
	// OpenStreetMap's, fine for a family's use (tile usage policy:
	// https://operations.osmfoundation.org/policies/tiles/).
	DefaultTileURL         = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
	DefaultTileAttribution = "&copy; OpenStreetMap contributors"

	socketFile      = "wherehouse.sock"
	serverKeyFile   = "server.key"
	brokerStateFile = "mqtt.db"
	shutdownTimeout = 10 * time.Second
	adminName       = "admin"
)

// serveConfig is everything serve's flags set.
type serveConfig struct {
	Data           string
	HTTP           string
	MQTT           string
	MQTTTLS        string
	TLSCert        string
	TLSKey         string
	Broker         string
	BrokerUser     string
	BrokerPassword string
	BrokerTopic    string
	BrokerShare    string
	BrokerClientID string
	MaxPacket      int
	MaxClients     int
	EventTopic     string
	LogLevel       string
	LogFormat      string

	// The web app.
	TileURL         string
	TileAttribution string
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := newFlagSet("serve", "wherehouse serve [flags]", stderr)
	fs.StringVar(&cfg.Data, "data", DefaultData, "data directory (created if missing)")
	fs.StringVar(&cfg.HTTP, "http", DefaultHTTP, "HTTP address: API, map, /pub, MQTT over WebSocket at /mqtt")
	fs.StringVar(&cfg.MQTT, "mqtt", DefaultMQTT, `embedded broker's MQTT TCP address; "off" disables it`)
	fs.StringVar(&cfg.MQTTTLS, "mqtt-tls", "", "embedded broker's MQTT-over-TLS address (needs --tls-cert and --tls-key), e.g. :8883")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM, full chain)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.StringVar(&cfg.Broker, "broker", "", "external broker URL (tcp://, ssl://, ws://); disables the embedded broker")
	fs.StringVar(&cfg.BrokerUser, "broker-user", "", "user name on the external broker")
	fs.StringVar(&cfg.BrokerPassword, "broker-password", "", "password on the external broker")
	fs.StringVar(&cfg.BrokerTopic, "broker-topic", broker.DefaultTopic, "topic filter to subscribe to on the external broker")
	fs.StringVar(&cfg.BrokerShare, "broker-share", "", "shared-subscription group: instances in one group split the stream")
	fs.StringVar(&cfg.BrokerClientID, "broker-client-id", "", `client id on the external broker (default "wherehouse-<hostname>")`)
	fs.IntVar(&cfg.MaxPacket, "mqtt-max-packet", broker.DefaultMaxPacket, "largest MQTT packet accepted, in bytes")
	fs.IntVar(&cfg.MaxClients, "mqtt-max-clients", broker.DefaultMaxClients, "most MQTT clients connected at once")
	fs.StringVar(&cfg.EventTopic, "event-topic", events.DefaultEventTopic, `MQTT topic prefix for fence events as JSON (<prefix>/<user>/<device>); "off" disables it`)
	fs.StringVar(&cfg.TileURL, "tile-url", DefaultTileURL, "web map tile URL template ({z}, {x}, {y}, optional {s})")
	fs.StringVar(&cfg.TileAttribution, "tile-attribution", DefaultTileAttribution, "attribution shown on the web map for its tiles (HTML)")
	fs.StringVar(&cfg.LogLevel, "log-level", DefaultLogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", DefaultLogFormat, "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, log)
}

// serve runs every component until ctx ends, then stops them in reverse
// order: stop accepting, drain the recorder, close the store.
func serve(ctx context.Context, cfg serveConfig, stdout io.Writer, log *slog.Logger) (err error) {
	sock := filepath.Join(cfg.Data, socketFile)
	if controlRunning(sock) {
		return fmt.Errorf("a wherehouse server is already running on %s; stop it first or use another --data", cfg.Data)
	}
	store, err := embedded.Open(ctx, cfg.Data, log)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("%w: is another wherehouse using %s?", err, cfg.Data)
	}
	if err != nil {
		return err
	}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		if cerr := store.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		log.Info("stopped")
	}()

	accounts := auth.NewAccounts(store)
	if err := bootstrapAdmin(ctx, accounts, stdout, log); err != nil {
		return err
	}
	policy, err := auth.NewPolicy(ctx, store)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := recorder.NewMetrics(reg)
	live := recorder.NewLive(metrics.LiveDropped)
	secrets, err := openSecrets(cfg.Data, store)
	if err != nil {
		return err
	}
	rec := recorder.New(store, live, metrics, log, recorder.Options{Secrets: secrets})
	tracker := recorder.NewDeviceTracker(store, log)
	rec.Observe(tracker.Observe)

	// Fences and events: evaluated after each commit, delivered on MQTT
	// (once the broker is up), to webhooks and to /ws/events.
	eventTopic := cfg.EventTopic
	if eventTopic == "off" {
		eventTopic = ""
	}
	policy.EventTopic = eventTopic
	hooks := webhook.New(store, log, reg, webhook.Options{UserAgent: "wherehouse/" + version})
	var slot publisherSlot
	engine, err := events.New(ctx, store, policy, log, reg, events.Options{
		Publisher: &slot, EventTopic: eventTopic, Notify: hooks.Notify,
	})
	if err != nil {
		return err
	}
	rec.Observe(engine.Observe)

	// Retention and deletions: policies applied in the background; the
	// engine and the tracker forget deleted devices, the broker (once it
	// exists) their retained messages.
	var retained broker.Retained
	keeper := newRetention(store, log, engine.ForgetDevice, func(ctx context.Context, user, device string) {
		tracker.Forget(ctx, user, device)
		retained.Forget(ctx, user, device)
	}, purgeUser(policy, engine, store, secrets, store))

	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	// Stopped by the stop function below, also when serve fails before
	// ctx ends (otherwise wg.Wait would wait for a signal).
	bgCtx, stopBackground := context.WithCancel(ctx)
	wg.Go(func() { keeper.Run(bgCtx) }) // returns after its current batch
	wg.Go(func() { releaseMemory(bgCtx, store, log) })
	var ewg, hwg sync.WaitGroup
	hooksCtx, stopHooks := context.WithCancel(context.WithoutCancel(ctx))
	stops = append(stops, func() {
		// Drain in data-flow order: recorder, then fences, then webhooks.
		rec.Close()
		stopBackground()
		wg.Wait()
		engine.Close()
		ewg.Wait()
		stopHooks()
		hwg.Wait()
	})

	var tlsConfig *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w (check --tls-cert and --tls-key)", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	var mqttWS http.Handler
	var publisher api.Publisher // sends cmds to devices
	if cfg.Broker != "" {
		ext, err := broker.NewExternal(broker.ExternalConfig{
			URL: cfg.Broker, User: cfg.BrokerUser, Password: cfg.BrokerPassword,
			Topic: cfg.BrokerTopic, Share: cfg.BrokerShare, ClientID: cfg.BrokerClientID,
		}, rec, log)
		if err != nil {
			return err
		}
		extCtx, cancel := context.WithCancel(ctx)
		var ewg sync.WaitGroup
		ewg.Go(func() { ext.Run(extCtx) })
		stops = append(stops, func() { cancel(); ewg.Wait() })
		log.Info("using external broker", "broker", cfg.Broker, "filter", ext.Filter())
		publisher = ext
		retained.Use(ext.ForgetRetained)
	} else {
		tcp := cfg.MQTT
		if tcp == "off" {
			tcp = ""
		}
		emb, err := broker.NewEmbedded(broker.Config{
			TCP: tcp, TLS: cfg.MQTTTLS, TLSConfig: tlsConfig,
			MaxPacket: cfg.MaxPacket, MaxClients: cfg.MaxClients,
			StateFile: filepath.Join(cfg.Data, brokerStateFile), Devices: store,
		}, accounts, policy, rec, reg, log)
		if err != nil {
			return err
		}
		if err := emb.Start(); err != nil {
			return err
		}
		stops = append(stops, func() { emb.Close() })
		mqttWS = emb
		publisher = emb
		retained.Use(emb.ForgetRetained)
		if a := emb.Addr("tcp"); a != "" {
			log.Info("listening", "service", "mqtt", "addr", a)
		}
		if a := emb.Addr("tls"); a != "" {
			log.Info("listening", "service", "mqtts", "addr", a)
		}
	}

	slot.set(publisher)
	ewg.Go(func() { engine.Run(ctx) })
	hwg.Go(func() { hooks.Run(hooksCtx) })

	// Imports (the CLI over the control socket, admin uploads) append to
	// the store in large batches, past the recorder and the fence engine
	// (history fires no events), and update device state through the tracker.
	imports := importer.New(store, importer.Options{Observe: tracker.Observe, Live: live,
		Imported: func(_ context.Context, newest map[[2]string]int64) error {
			for k, tst := range newest {
				engine.SkipImported(k[0], k[1], tst)
			}
			return nil
		}})

	apiServer := api.New(api.Deps{
		Store: store, Devices: store, Accounts: accounts, Policy: policy, Live: live, Version: version, Log: log,
		Gatherer: reg, MQTT: mqttWS, Frontend: frontend.Handler(),
		Recorder: rec, Secrets: secrets, Commands: store, Publisher: publisher,
		Events: engine, Fences: store, EventStore: store, Retention: keeper, Importer: imports,
		Sessions: store, TileURL: cfg.TileURL, TileAttribution: cfg.TileAttribution, EventTopic: eventTopic,
	})
	httpLn, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen for http on %s: %w (is something else using the port? try --http)", cfg.HTTP, err)
	}
	httpSrv := &http.Server{Handler: apiServer, ReadHeaderTimeout: 10 * time.Second}
	stops = append(stops, serveHTTP(httpSrv, httpLn, apiServer.Close, log))
	log.Info("listening", "service", "http", "addr", httpLn.Addr().String())

	os.Remove(sock) // stale from a crash; we hold the store lock
	ctlLn, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("open control socket %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ctlLn.Close()
		return fmt.Errorf("restrict control socket: %w", err)
	}
	ctlSrv := &http.Server{Handler: api.Control(api.ControlDeps{
		Accounts: accounts, Secrets: secrets, Policy: policy, Events: engine, Store: store, Log: log, Retention: keeper,
		History: store, Version: version, Importer: imports, Maintenance: store,
	}), ReadHeaderTimeout: 10 * time.Second}
	stops = append(stops, serveHTTP(ctlSrv, ctlLn, func() {}, log))

	fmt.Fprintf(stdout, "wherehouse %s ready: open http://%s/ (data in %s)\n", version, displayAddr(httpLn.Addr()), cfg.Data)
	log.Info("ready", "version", version, "data", cfg.Data)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

// releaseInterval is how often touched history pages are dropped from the
// resident set (see embedded.Store.ReleaseMemory).
const releaseInterval = 5 * time.Second

func releaseMemory(ctx context.Context, store *embedded.Store, log *slog.Logger) {
	t := time.NewTicker(releaseInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := store.ReleaseMemory(); err != nil {
				log.Debug("release memory", "error", err)
			}
		}
	}
}

// openSecrets loads (creating on first use) the server key that seals
// device secrets, kept beside the store.
func openSecrets(dataDir string, store storage.Keys) (*auth.Secrets, error) {
	ring, err := auth.LoadKeyring(filepath.Join(dataDir, serverKeyFile))
	if err != nil {
		return nil, err
	}
	return auth.NewSecrets(store, ring), nil
}

// serveHTTP serves srv on ln in the background and returns its stop function.
func serveHTTP(srv *http.Server, ln net.Listener, closeLong func(), log *slog.Logger) func() {
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", ln.Addr().String(), "error", err)
		}
	})
	return func() {
		closeLong()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		wg.Wait()
	}
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// bootstrapAdmin creates the admin user on first start, with the password
// from WHEREHOUSE_ADMIN_PASSWORD or a random one printed once.
func bootstrapAdmin(ctx context.Context, accounts *auth.Accounts, stdout io.Writer, log *slog.Logger) error {
	users, err := accounts.List(ctx)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return nil
	}
	password, generated := os.Getenv("WHEREHOUSE_ADMIN_PASSWORD"), false
	if password == "" {
		password, generated = auth.RandomPassword(), true
	}
	if err := accounts.Add(ctx, adminName, password, true); err != nil {
		return fmt.Errorf("create first user %s: %w", adminName, err)
	}
	log.Info("created first user", "user", adminName)
	if generated {
		fmt.Fprintf(stdout, "\nCreated user %q with password:\n\n    %s\n\nIt is shown only this once. Change it with: wherehouse user passwd %s\n\n", adminName, password, adminName)
	}
	return nil
}

// publisherSlot lets the fence engine, built before the broker, publish
// through it once it exists.
type publisherSlot struct{ p atomic.Pointer[api.Publisher] }

func (s *publisherSlot) set(p api.Publisher) {
	if p != nil {
		s.p.Store(&p)
	}
}

func (s *publisherSlot) Publish(topic string, payload []byte, retain bool, qos byte) error {
	p := s.p.Load()
	if p == nil {
		return errors.New("no MQTT broker")
	}
	return (*p).Publish(topic, payload, retain, qos)
}
