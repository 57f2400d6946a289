package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wherehouse/wherehouse/bench/track"
)

// Defaults of the flags.
const (
	DefaultPoints   = 1_000_000
	DefaultDevices  = 10
	DefaultUsers    = 3
	DefaultStart    = "2025-01-01T00:00:00Z"
	DefaultInterval = 26 * time.Second // 100,000 fixes ≈ one month
	DefaultSeed     = 1

	// recTopic is the Recorder's topic column of a location on the
	// device's own topic: "*" padded to 18 (recorder.c RECFORMAT).
	recTopic = "*                 "
	// writeBuffer is the buffer of each .rec file being written.
	writeBuffer = 1 << 20
)

type config struct {
	Dir      string
	Points   int
	Devices  int
	Users    int
	Start    time.Time
	Interval time.Duration
	Stagger  time.Duration
	Seed     uint64
	Workers  int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "recgen:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	var start string
	fs := flag.NewFlagSet("recgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Dir, "dir", "", "Recorder store directory to write (rec/ is created in it)")
	fs.IntVar(&cfg.Points, "points", DefaultPoints, "location fixes in all, split evenly over the devices")
	fs.IntVar(&cfg.Devices, "devices", DefaultDevices, "devices; device n belongs to user n % -users")
	fs.IntVar(&cfg.Users, "users", DefaultUsers, "users")
	fs.StringVar(&start, "start", DefaultStart, "time of device 0's first fix, RFC 3339")
	fs.DurationVar(&cfg.Interval, "interval", DefaultInterval, "mean time between a device's fixes (each gap is 0.5–1.5 times it)")
	fs.DurationVar(&cfg.Stagger, "stagger", 0, "device n starts n times this after -start")
	fs.Uint64Var(&cfg.Seed, "seed", DefaultSeed, "random seed; the same flags write the same files")
	fs.IntVar(&cfg.Workers, "workers", runtime.GOMAXPROCS(0), "devices written at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; all settings are flags (see -h)", fs.Args())
	}
	var err error
	if cfg.Start, err = time.Parse(time.RFC3339, start); err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	if err := cfg.check(); err != nil {
		return err
	}
	t0 := time.Now()
	res, err := generate(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "RESULT points=%d devices=%d users=%d files=%d bytes=%d bytes_per_point=%.1f first=%s last=%s seconds=%.2f\n",
		res.points, cfg.Devices, cfg.Users, res.files, res.bytes, float64(res.bytes)/float64(max(res.points, 1)),
		time.Unix(res.first, 0).UTC().Format(time.RFC3339), time.Unix(res.last, 0).UTC().Format(time.RFC3339),
		time.Since(t0).Seconds())
	return nil
}

func (c *config) check() error {
	switch {
	case c.Dir == "":
		return errors.New("name the store directory to write with -dir")
	case c.Points < 0:
		return errors.New("-points must not be negative")
	case c.Devices < 1 || c.Users < 1:
		return errors.New("-devices and -users must be at least 1")
	case c.Interval < time.Second:
		return errors.New("-interval must be at least 1s (tst has whole seconds)")
	case c.Stagger < 0:
		return errors.New("-stagger must not be negative")
	case c.Workers < 1:
		return errors.New("-workers must be at least 1")
	}
	return nil
}

// result is what was written.
type result struct {
	points, files int
	bytes         int64
	first, last   int64 // tst of the earliest and the latest fix
}

func (r *result) add(o result) {
	if o.points == 0 {
		return
	}
	if r.points == 0 || o.first < r.first {
		r.first = o.first
	}
	r.last = max(r.last, o.last)
	r.points += o.points
	r.files += o.files
	r.bytes += o.bytes
}

// generate writes every device's files, -workers devices at a time.
func generate(ctx context.Context, cfg config) (result, error) {
	var (
		mu    sync.Mutex
		total result
		errs  []error
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range cfg.Workers {
		wg.Go(func() {
			for n := range next {
				r, err := writeDevice(ctx, cfg, n)
				mu.Lock()
				total.add(r)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for n := range cfg.Devices {
		if ctx.Err() != nil {
			break
		}
		next <- n
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}

// names returns device n's user and device names.
func names(cfg config, n int) (user, device string) {
	return "user" + strconv.Itoa(n%cfg.Users), "dev" + strconv.Itoa(n)
}

// writeDevice writes device n's fixes, one .rec file per month.
func writeDevice(ctx context.Context, cfg config, n int) (res result, err error) {
	points := cfg.Points / cfg.Devices
	if n < cfg.Points%cfg.Devices {
		points++
	}
	if points == 0 {
		return res, nil
	}
	user, device := names(cfg, n)
	dir := filepath.Join(cfg.Dir, "rec", user, device)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	tr := track.New(n, cfg.Seed, cfg.Start.Add(time.Duration(n)*cfg.Stagger).Unix())
	interval := int64(cfg.Interval / time.Second)

	var (
		f     *os.File
		w     *bufio.Writer
		month string
		line  = make([]byte, 0, 512)
	)
	closeFile := func() error {
		if f == nil {
			return nil
		}
		err := w.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		f = nil
		return err
	}
	defer func() {
		if cerr := closeFile(); err == nil {
			err = cerr
		}
	}()
	for i := range points {
		if i%10_000 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		gap := int64(0)
		if i > 0 {
			gap = tr.Gap(interval)
		}
		line = time.Unix(tr.TST+gap, 0).UTC().AppendFormat(line[:0], "2006-01-02T15:04:05Z")
		if m := string(line[:7]); m != month {
			if err := closeFile(); err != nil {
				return res, err
			}
			month = m
			if f, err = os.Create(filepath.Join(dir, month+".rec")); err != nil {
				return res, err
			}
			w = bufio.NewWriterSize(f, writeBuffer)
			res.files++
		}
		line = append(line, '\t')
		line = append(line, recTopic...)
		line = append(line, '\t')
		line = tr.AppendFix(line, gap)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return res, err
		}
		if i == 0 {
			res.first = tr.TST
		}
		res.last = tr.TST
		res.points++
		res.bytes += int64(len(line))
	}
	return res, nil
}
