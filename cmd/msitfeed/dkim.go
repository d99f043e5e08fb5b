package main

import (
	"errors"
	"fmt"

	"github.com/msitfeed/msitfeed/mailer"
)

// runDKIM prints the DNS TXT record that publishes the public half of
// mail.dkim_key, as a zone-file line under a comment saying what to do
// with it. It opens no database. Without mail.dkim_* it is a usage error.
func (m *Main) runDKIM(configPath string, args []string) error {
	fs := m.newFlagSet("dkim")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("dkim takes no arguments, got %q", fs.Arg(0))
	}
	cfg, err := m.loadConfig(configPath)
	if err != nil {
		return err
	}
	r, err := mailer.NewDKIMRecord(cfg.Mail)
	if errors.Is(err, mailer.ErrNoDKIM) {
		return usagef("dkim: DKIM is not configured: set mail.dkim_domain, mail.dkim_selector and mail.dkim_key (see README, \"Signing mail with DKIM\")")
	}
	if err != nil {
		return &UsageError{Msg: "dkim: " + err.Error()}
	}
	fmt.Fprintf(m.Stdout, "; DKIM key of %s (%s) for mail from %s; publish this record, then check it with: dig +short TXT %s\n",
		cfg.Mail.DKIMKey, r.Key, cfg.Mail.DKIMDomain, r.Name)
	fmt.Fprintln(m.Stdout, r.ZoneLine())
	return nil
}
