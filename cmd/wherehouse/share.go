package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

const shareSynopsis = `wherehouse share OWNER VIEWER [--device D] [--until TIME] [--precision METERS] [--history]
       wherehouse share list [--user NAME]
       wherehouse share del ID`

// runShare lets VIEWER see OWNER's live location (and more with flags).
func runShare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("share", shareSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	device := fs.String("device", "", "share only this device (default: all of OWNER's devices)")
	until := fs.String("until", "", "expiry: a time (2026-12-31, 2026-12-31T18:00:00Z) or a duration from now (8h, 7d)")
	precision := fs.Int("precision", 0, "coarsen positions to a grid of this many metres (0: exact)")
	history := fs.Bool("history", false, "also let VIEWER read OWNER's track history")
	user := fs.String("user", "", "with list: only shares where this user is owner or viewer")
	pos, err := parseWithPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("share needs OWNER VIEWER, list, or del ID")
	}
	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	switch {
	case pos[0] == "list" && len(pos) == 1:
		shares, err := admins.Shares(ctx, strings.ToLower(*user))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tOWNER\tVIEWER\tDEVICE\tPRECISION\tHISTORY\tUNTIL")
		for _, s := range shares {
			d, u, p := s.Device, "-", "exact"
			if d == "" {
				d = "*"
			}
			if !s.Until.IsZero() {
				u = s.Until.Format(time.RFC3339)
			}
			if s.Precision > 0 {
				p = strconv.Itoa(s.Precision) + " m"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", s.ID, s.Owner, s.Viewer, d, p, s.History, u)
		}
		return tw.Flush()
	case pos[0] == "del" && len(pos) == 2:
		if err := admins.Revoke(ctx, pos[1]); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no share %s; see: wherehouse share list", pos[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "share %s revoked\n", pos[1])
		return nil
	case len(pos) == 2:
		sh := storage.Share{Owner: strings.ToLower(pos[0]), Viewer: strings.ToLower(pos[1]),
			Device: strings.ToLower(*device), Precision: *precision, History: *history}
		if *until != "" {
			if sh.Until, err = parseUntil(*until, time.Now()); err != nil {
				return err
			}
		}
		sh, err := admins.AddShare(ctx, sh)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "share %s: %s now sees %s\n", sh.ID, sh.Viewer, sh.Owner)
		return nil
	}
	fs.Usage()
	return fmt.Errorf("share: cannot read %q", strings.Join(pos, " "))
}

// parseUntil reads an absolute time or a duration from now (with "d" for days).
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(d).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--until %q: use a time like 2026-12-31T18:00:00Z or 2026-12-31, or a duration like 8h or 7d", v)
}

const groupSynopsis = `wherehouse group set NAME MEMBER...   (everyone in a group sees everyone in it)
       wherehouse group del NAME
       wherehouse group list`

func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group", groupSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	pos, err := parseWithPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("group needs set, del or list")
	}
	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	switch {
	case pos[0] == "list":
		groups, err := admins.Groups(ctx)
		if err != nil {
			return err
		}
		for _, g := range groups {
			fmt.Fprintf(stdout, "%s: %s\n", g.Name, strings.Join(g.Members, " "))
		}
		return nil
	case pos[0] == "set" && len(pos) >= 3:
		members := make([]string, 0, len(pos)-2)
		for _, m := range pos[2:] {
			members = append(members, strings.ToLower(m))
		}
		if err := admins.SetGroup(ctx, storage.Group{Name: strings.ToLower(pos[1]), Members: members}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s: %s\n", pos[1], strings.Join(members, " "))
		return nil
	case pos[0] == "del" && len(pos) == 2:
		if err := admins.DeleteGroup(ctx, strings.ToLower(pos[1])); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no group %s", pos[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "group %s deleted\n", pos[1])
		return nil
	}
	fs.Usage()
	return fmt.Errorf("group: cannot read %q", strings.Join(pos, " "))
}
