package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wherehouse/wherehouse/storage"
)

const webhookSynopsis = `wherehouse webhook add URL --user OWNER [--secret S]
       wherehouse webhook list [--user OWNER]
       wherehouse webhook del ID`

// runWebhook manages the webhooks that receive fence events.
func runWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("webhook", webhookSynopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	user := fs.String("user", "", "the webhook's owner: it gets the events this user may see (with list: only theirs)")
	secret := fs.String("secret", "", "HMAC-SHA256 signing secret (default: a random one, printed once)")
	pos, err := parseWithPositional(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("webhook needs add URL, list, or del ID")
	}
	if pos[0] == "add" && *user == "" {
		return errors.New("webhook add needs --user OWNER: whose events it receives")
	}
	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	switch {
	case pos[0] == "add" && len(pos) == 2:
		w, err := admins.AddWebhook(ctx, storage.Webhook{Owner: *user, URL: pos[1], Secret: *secret})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "webhook %s: events of %s go to %s\nsigning secret: %s\n", w.ID, w.Owner, w.URL, w.Secret)
		return nil
	case pos[0] == "list" && len(pos) == 1:
		list, err := admins.Webhooks(ctx, strings.ToLower(*user))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tOWNER\tURL\tCREATED")
		for _, w := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.ID, w.Owner, w.URL, w.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	case pos[0] == "del" && len(pos) == 2:
		if err := admins.DeleteWebhook(ctx, pos[1]); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no webhook %s; see: wherehouse webhook list", pos[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "webhook %s deleted\n", pos[1])
		return nil
	}
	fs.Usage()
	return fmt.Errorf("webhook: cannot read %q", strings.Join(pos, " "))
}
