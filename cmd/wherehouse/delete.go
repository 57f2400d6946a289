package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wherehouse/wherehouse/api"
	"github.com/wherehouse/wherehouse/storage"
)

const deleteSynopsis = `wherehouse delete --user USER --device DEVICE --from TIME --to TIME
       wherehouse delete --user USER --device DEVICE --all
       wherehouse delete --user USER --all`

// runDelete deletes stored history: a time range of one device (every
// message type and the fence events in it; from and to inclusive, read as
// /api/0/locations reads them), a whole device (also its last position,
// state, fence states and events), or every device of a user (the account
// stays; "user del NAME --data-too" removes it too).
func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("delete", deleteSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	user := fs.String("user", "", "whose data")
	device := fs.String("device", "", "which device")
	fromV := fs.String("from", "", "first fix time to delete, UTC: 2024-05-01T07:00:00, 2024-05-01 or UNIX seconds")
	toV := fs.String("to", "", "last fix time to delete (inclusive); a date alone means the end of that day")
	all := fs.Bool("all", false, "everything of --device, or with no --device every device of --user")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("delete takes no arguments, got %q (quote times with spaces)", fs.Args())
	}
	u, d := strings.ToLower(*user), strings.ToLower(*device)
	var from, to int64
	switch {
	case u == "":
		fs.Usage()
		return errors.New("delete needs --user")
	case *all && (*fromV != "" || *toV != ""):
		return errors.New("give either --all or --from and --to, not both")
	case !*all && d == "":
		fs.Usage()
		return errors.New("delete needs --device with --from and --to, or --all")
	case !*all:
		if *fromV == "" || *toV == "" {
			return errors.New("delete needs both --from and --to (a deletion has no default range; --all for everything)")
		}
		f, err := api.ParseTime(*fromV, false)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		t, err := api.ParseTime(*toV, true)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		if f.After(t) {
			return errors.New("--from is after --to")
		}
		from, to = f.Unix(), t.Unix()
	}

	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	var n storage.Deleted
	what := u + "/" + d
	switch {
	case !*all:
		n, err = admins.DeleteRange(ctx, u, d, from, to)
	case d != "":
		n, err = admins.DeleteDevice(ctx, u, d)
	default:
		what = "every device of " + u
		n, err = admins.DeleteUserData(ctx, u, false)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("nothing is stored for %s", what)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", what, describeDeleted(n))
	return nil
}
