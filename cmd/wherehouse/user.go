package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/wherehouse/wherehouse/storage"
)

func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const synopsis = "wherehouse user add|list|del|passwd [NAME] [flags]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage:", synopsis)
		return errors.New("user needs a subcommand: add, list, del or passwd")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("user "+sub, synopsis, stderr)
	data := fs.String("data", DefaultData, "data directory")
	admin := fs.Bool("admin", false, "with add: the user administers the server and sees everyone")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (first line) instead of prompting")
	dataToo := fs.Bool("data-too", false, "with del: also delete everything stored about the user: history, devices, fence events, shares, group memberships, fences, webhooks, device secrets, retention policy")
	// Allow the name before the flags: "user add alice --admin".
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	name = strings.ToLower(name)
	needsName := sub != "list" && sub != "ls"
	if needsName && name == "" {
		return fmt.Errorf("user %s needs a user name", sub)
	}

	admins, closeStore, err := openAdmin(ctx, *data)
	if err != nil {
		return err
	}
	defer closeStore()

	switch sub {
	case "add":
		password, err := readPassword(stdin, stderr, *fromStdin, true)
		if err != nil {
			return err
		}
		if err := admins.Add(ctx, name, password, *admin); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return fmt.Errorf("user %s already exists; change the password with: wherehouse user passwd %s", name, name)
			}
			return err
		}
		fmt.Fprintf(stdout, "user %s added\n", name)
	case "passwd":
		password, err := readPassword(stdin, stderr, *fromStdin, true)
		if err != nil {
			return err
		}
		if err := admins.SetPassword(ctx, name, password); err != nil {
			return notFoundHint(err, name)
		}
		fmt.Fprintf(stdout, "password of %s changed\n", name)
	case "del", "delete", "rm":
		if !*dataToo {
			if err := admins.Delete(ctx, name); err != nil {
				return notFoundHint(err, name)
			}
			fmt.Fprintf(stdout, "user %s deleted (their stored data is kept; delete it with: wherehouse delete --user %s --all)\n", name, name)
			break
		}
		// The data first: if that fails, the account is still there to retry with.
		n, err := admins.DeleteUserData(ctx, name, true)
		if err != nil {
			return err
		}
		err = admins.Delete(ctx, name)
		switch {
		case errors.Is(err, storage.ErrNotFound) && n.Total() == 0:
			return notFoundHint(err, name)
		case errors.Is(err, storage.ErrNotFound):
			fmt.Fprintf(stdout, "no account %s, but its data: %s\n", name, describeDeleted(n))
		case err != nil:
			return err
		default:
			fmt.Fprintf(stdout, "user %s deleted with their data: %s\n", name, describeDeleted(n))
		}
	case "list", "ls":
		users, err := admins.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADMIN\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%v\t%s\n", u.Name, u.Admin, u.Created.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown user subcommand %q: use add, list, del or passwd", sub)
	}
	return nil
}

func notFoundHint(err error, name string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no user %s; see: wherehouse user list", name)
	}
	return err
}

// readPassword reads a password: the first line of stdin with
// --password-stdin or when stdin is not a terminal, else a silent prompt
// (asked twice when confirm is set).
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin, confirm bool) (string, error) {
	f, isFile := stdin.(*os.File)
	if fromStdin || !isFile || !term.IsTerminal(int(f.Fd())) {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", errors.New("no password on standard input")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(stderr, "Password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if confirm {
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords do not match")
		}
	}
	return string(p1), nil
}
