package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wherehouse/wherehouse/storage"
)

// runKey manages the payload-encryption secrets of devices: the secret
// typed into the app's encryption setting, read from standard input.
func runKey(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const synopsis = "wherehouse key set|del USER DEVICE   (DEVICE \"*\" = every device of USER without its own)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage:", synopsis)
		return errors.New("key needs a subcommand: set or del")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("key "+sub, synopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pos = append(pos, fs.Args()...)
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "Usage:", synopsis)
		return fmt.Errorf("key %s needs USER and DEVICE", sub)
	}
	user, device := strings.ToLower(pos[0]), strings.ToLower(pos[1])
	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	switch sub {
	case "set":
		secret, err := readPassword(stdin, stderr, false, false)
		if err != nil {
			return err
		}
		if secret == "" {
			return errors.New("empty secret: type the secret from the app's encryption setting")
		}
		if err := admins.SetKey(ctx, user, device, secret); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "encryption secret of %s/%s set\n", user, device)
	case "del", "delete", "rm":
		if err := admins.DeleteKey(ctx, user, device); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no secret set for %s/%s", user, device)
			}
			return err
		}
		fmt.Fprintf(stdout, "encryption secret of %s/%s deleted\n", user, device)
	default:
		return fmt.Errorf("unknown key subcommand %q: use set or del", sub)
	}
	return nil
}
