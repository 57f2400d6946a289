package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

const fenceSynopsis = `wherehouse fence add NAME --user OWNER (--circle LAT,LON,RADIUS | --geojson FILE) [flags]
       wherehouse fence list [--user OWNER]
       wherehouse fence del ID`

// runFence manages server-side geofences.
func runFence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fence", fenceSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	user := fs.String("user", "", "the fence's owner (with list: only this owner's fences)")
	circle := fs.String("circle", "", "a circle: LAT,LON,RADIUS in degrees and metres, e.g. 52.5163,13.3777,150")
	geojson := fs.String("geojson", "", `a GeoJSON file with a Polygon or MultiPolygon (geometry or Feature); "-" for stdin`)
	devices := fs.String("devices", "", "only these of the owner's devices, comma-separated (default: all)")
	shared := fs.Bool("shared", false, "also evaluate it for everyone who shares their location with the owner (exactly)")
	dwell := fs.Duration("dwell", 0, "time inside before enter fires, e.g. 2m (default: at once)")
	leaveAfter := fs.Duration("leave-after", 0, "time outside before leave fires, e.g. 5m (default: at once)")
	hysteresis := fs.Float64("hysteresis", 0, "metres beyond the border before a fix counts as outside (0: the default, 20)")
	maxAccuracy := fs.Float64("max-accuracy", 0, "ignore fixes less accurate than this many metres (0: the default, 250)")
	pos, err := parseWithPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("fence needs add NAME, list, or del ID")
	}
	var f storage.Fence
	if pos[0] == "add" {
		if len(pos) != 2 {
			fs.Usage()
			return errors.New(`fence add needs one NAME (quote it if it has spaces: "Aunt Mary")`)
		}
		// Check the definition before touching the store.
		f = storage.Fence{Name: pos[1], Owner: strings.ToLower(*user), Shared: *shared,
			Dwell: int64(dwell.Seconds()), LeaveAfter: int64(leaveAfter.Seconds()),
			Hysteresis: *hysteresis, MaxAccuracy: *maxAccuracy}
		if f.Owner == "" {
			return errors.New("fence add needs --user OWNER: whose fence it is")
		}
		if f.Geometry, f.Radius, err = fenceGeometry(*circle, *geojson); err != nil {
			return err
		}
		if *devices != "" {
			f.Devices = strings.Split(*devices, ",")
		}
	}
	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	switch {
	case pos[0] == "add":
		f, err := admins.AddFence(ctx, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "fence %s: %q of %s\n", f.ID, f.Name, f.Owner)
		return nil
	case pos[0] == "list" && len(pos) == 1:
		list, err := admins.Fences(ctx, strings.ToLower(*user))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tOWNER\tNAME\tSHAPE\tDEVICES\tSHARED\tDWELL\tLEAVE AFTER")
		for _, f := range list {
			shape := "polygon"
			if f.Radius > 0 {
				shape = fmt.Sprintf("circle %.0f m", f.Radius)
			}
			devs := "*"
			if len(f.Devices) > 0 {
				devs = strings.Join(f.Devices, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", f.ID, f.Owner, f.Name, shape, devs, f.Shared,
				time.Duration(f.Dwell)*time.Second, time.Duration(f.LeaveAfter)*time.Second)
		}
		return tw.Flush()
	case pos[0] == "del" && len(pos) == 2:
		if err := admins.DeleteFence(ctx, pos[1]); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no fence %s; see: wherehouse fence list", pos[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "fence %s deleted\n", pos[1])
		return nil
	}
	fs.Usage()
	return fmt.Errorf("fence: cannot read %q", strings.Join(pos, " "))
}

// fenceGeometry reads --circle or --geojson into a GeoJSON geometry.
func fenceGeometry(circle, file string) ([]byte, float64, error) {
	switch {
	case circle != "" && file != "":
		return nil, 0, errors.New("give either --circle or --geojson, not both")
	case circle != "":
		parts := strings.Split(circle, ",")
		if len(parts) != 3 {
			return nil, 0, fmt.Errorf("--circle %q: want LAT,LON,RADIUS, e.g. 52.5163,13.3777,150", circle)
		}
		var v [3]float64
		for i, p := range parts {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil {
				return nil, 0, fmt.Errorf("--circle %q: %q is not a number", circle, p)
			}
			v[i] = f
		}
		geom := fmt.Sprintf(`{"type":"Point","coordinates":[%s,%s]}`,
			strconv.FormatFloat(v[1], 'f', -1, 64), strconv.FormatFloat(v[0], 'f', -1, 64))
		return []byte(geom), v[2], nil
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		return b, 0, err
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, 0, fmt.Errorf("read --geojson: %w", err)
		}
		return b, 0, nil
	}
	return nil, 0, errors.New("fence add needs --circle LAT,LON,RADIUS or --geojson FILE")
}
