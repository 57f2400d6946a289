package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

const checkSynopsis = `wherehouse check [--json]`

// runCheck verifies the store: every record, block and index key, and the
// last positions. It exits non-zero when it finds a problem.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", checkSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check takes no arguments, got %q", fs.Args())
	}
	admin, closeAdmin, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeAdmin()
	start := time.Now()
	r, err := admin.Check(ctx, progressPrinter(stderr, "checked"))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%d devices: %d locations (%d packed in %d blocks), %d hidden, %d other messages, %d fence events\n",
			r.Devices, r.Locations, r.Packed, r.Blocks, r.Hidden, r.Messages, r.Events)
		fmt.Fprintf(stdout, "history file: %.1f MB, %.1f bytes per location\n", float64(r.FileBytes)/1e6, r.BytesPerLocation())
		for _, p := range r.Problems {
			fmt.Fprintln(stdout, "problem:", p)
		}
		if r.More > 0 {
			fmt.Fprintf(stdout, "… and %d more problems\n", r.More)
		}
	}
	if n := len(r.Problems) + r.More; n > 0 {
		return fmt.Errorf("%d problems found (in %s); \"wherehouse reindex\" rebuilds the indexes, a damaged record needs a backup", n, time.Since(start).Round(time.Millisecond))
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "no problems found (in %s)\n", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

const reindexSynopsis = `wherehouse reindex`

// runReindex rebuilds the spatial index and the packing from the stored
// records, and the last positions.
func runReindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reindex", reindexSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reindex takes no arguments, got %q", fs.Args())
	}
	admin, closeAdmin, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeAdmin()
	start := time.Now()
	n, err := admin.Reindex(ctx, progressPrinter(stderr, "reindexed"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindexed %d locations in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// progressPrinter prints "<verb> N locations" to w at most once a second.
func progressPrinter(w io.Writer, verb string) func(int) {
	last := time.Now()
	return func(n int) {
		if time.Since(last) >= time.Second {
			last = time.Now()
			fmt.Fprintf(w, "%s %d locations…\n", verb, n)
		}
	}
}

func (d directAdmin) Check(ctx context.Context, progress func(int)) (storage.CheckReport, error) {
	return d.store.Check(ctx, progress)
}

func (d directAdmin) Reindex(ctx context.Context, progress func(int)) (int, error) {
	done := 0
	err := d.store.Reindex(ctx, func(n int) {
		done = n
		if progress != nil {
			progress(n)
		}
	})
	return done, err
}

func (c *controlClient) Check(ctx context.Context, _ func(int)) (storage.CheckReport, error) {
	var r storage.CheckReport
	err := c.long().do(ctx, http.MethodPost, "/check", nil, &r)
	return r, err
}

func (c *controlClient) Reindex(ctx context.Context, _ func(int)) (int, error) {
	var out struct {
		Locations int `json:"locations"`
	}
	err := c.long().do(ctx, http.MethodPost, "/reindex", nil, &out)
	return out.Locations, err
}
