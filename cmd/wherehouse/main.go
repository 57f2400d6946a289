// Command wherehouse is a self-hosted location-tracking backend for the
// OwnTracks apps. See README.md, or run "wherehouse --help".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wherehouse:", err)
		os.Exit(1)
	}
}

const usage = `wherehouse: a self-hosted backend for the OwnTracks apps.

Usage:
  wherehouse serve [flags]                 run the server (MQTT broker, HTTP API, map)
  wherehouse user add NAME [--admin]       create a user (password prompted, or --password-stdin)
  wherehouse user list                     list users
  wherehouse user del NAME [--data-too]    delete a user (their data stays, unless --data-too)
  wherehouse user passwd NAME              change a user's password
  wherehouse key set USER DEVICE           set a device's payload-encryption secret (read from stdin;
                                           DEVICE "*" for all of USER's devices)
  wherehouse key del USER DEVICE           remove it
  wherehouse share OWNER VIEWER [flags]    let VIEWER see OWNER (--device, --until, --precision M, --history)
  wherehouse share list | del ID           list or revoke shares
  wherehouse group set NAME MEMBER...      everyone in a group sees everyone in it (group list, group del)
  wherehouse fence add NAME --user OWNER (--circle LAT,LON,RADIUS | --geojson FILE)
                                           a server-side geofence (fence list, fence del ID)
  wherehouse webhook add URL --user OWNER  POST OWNER's fence events to URL (webhook list, webhook del ID)
  wherehouse import PATH...                import history: a Recorder store directory or .rec files, GPX,
                                           GeoJSON, OwnTracks JSON lines, Google location history
                                           (--user U --device D for files that do not say whose they are)
  wherehouse export --user U --device D    write a device's history to stdout (--from, --to, --format
                                           json|geojson|geojsonpoi|linestring|gpx|kml|csv|xml|rec)
  wherehouse delete --user U --device D --from T --to T
                                           delete a time range of a device's history (inclusive);
                                           --device D --all: the whole device; no --device, --all: all of U's
  wherehouse retention set USER (--delete-after 365d | --thin-after 30d --thin-to 5m | --keep)
                                           how long USER's history is kept (retention list, retention run)
  wherehouse check [--json]                verify the store: every record, block and index (exit 1 on a problem)
  wherehouse reindex                       rebuild the spatial index, packing and last positions from the records
  wherehouse version                       print version and build information

Every command takes --data DIR (default ./data) and works whether or not
"serve" is running. Every flag can also be set as WHEREHOUSE_<FLAG>, e.g.
WHEREHOUSE_HTTP=:9000. Run "wherehouse COMMAND --help" for a command's flags.
`

// run is the whole CLI; main only wires the process to it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "user", "users":
		return runUser(ctx, args[1:], stdin, stdout, stderr)
	case "share", "shares":
		return runShare(ctx, args[1:], stdout, stderr)
	case "group", "groups":
		return runGroup(ctx, args[1:], stdout, stderr)
	case "fence", "fences":
		return runFence(ctx, args[1:], stdout, stderr)
	case "webhook", "webhooks":
		return runWebhook(ctx, args[1:], stdout, stderr)
	case "import":
		return runImport(ctx, args[1:], stdin, stdout, stderr)
	case "export":
		return runExport(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr)
	case "reindex":
		return runReindex(ctx, args[1:], stdout, stderr)
	case "delete":
		return runDelete(ctx, args[1:], stdout, stderr)
	case "retention":
		return runRetention(ctx, args[1:], stdout, stderr)
	case "key", "keys":
		return runKey(ctx, args[1:], stdin, stdout, stderr)
	case "version", "--version", "-version":
		return runVersion(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
