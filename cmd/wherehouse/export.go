package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/wherehouse/wherehouse/api"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

const exportSynopsis = `wherehouse export --user USER --device DEVICE [--from TIME] [--to TIME] [--format FORMAT] [flags] > FILE`

// DefaultExportFormat is the format of export without --format.
const DefaultExportFormat = "json"

// runExport writes a device's history to stdout: through the running
// server's control socket, or from the store directly when none runs.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", exportSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	user := fs.String("user", "", "whose history (required)")
	device := fs.String("device", "", "which device (required)")
	from := fs.String("from", "", "first fix time, UTC: 2024-05-01T07:00:00, 2024-05-01 or UNIX seconds (default: the first)")
	to := fs.String("to", "", "last fix time, as --from; a date alone means the end of that day (default: the last)")
	format := fs.String("format", DefaultExportFormat, "output format: "+api.ExportFormats)
	fields := fs.String("fields", "", "json, csv, xml: the members to write, comma-separated (e.g. tst,lat,lon)")
	gap := fs.Int64("gap", 0, "gpx, kml, linestring: start a new segment after a pause of more seconds than this (0: one segment)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export takes no arguments (got %q); usage: %s", fs.Arg(0), exportSynopsis)
	}
	opts := api.ExportOptions{User: strings.ToLower(*user), Device: strings.ToLower(*device), From: 0, To: math.MaxInt64,
		Format: strings.ToLower(*format), Fields: *fields, Gap: *gap}
	if opts.User == "" || opts.Device == "" {
		return fmt.Errorf("export needs --user and --device; usage: %s", exportSynopsis)
	}
	if *from != "" {
		t, err := api.ParseTime(*from, false)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		opts.From = t.Unix()
	}
	if *to != "" {
		t, err := api.ParseTime(*to, true)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		opts.To = t.Unix()
	}
	if opts.From > opts.To {
		return fmt.Errorf("--from %s is after --to %s", *from, *to)
	}
	// An export only reads: never create a store where there is none.
	if !controlRunning(filepath.Join(*data, socketFile)) && !storeExists(*data) {
		return fmt.Errorf("no wherehouse store in %s: point --data at the server's data directory", *data)
	}
	admin, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	return admin.Export(ctx, opts, stdout)
}

// storeExists reports whether dir holds a wherehouse store.
func storeExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, embedded.HistoryFile))
	return err == nil
}
