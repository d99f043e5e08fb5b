// Package config holds msitfeed's configuration: defaults for every key, an
// optional TOML file, MSITFEED_* environment overrides, and one validation
// pass at start. It is a plain value passed down; nothing reads a global.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ProjectURL is the default contact URL placed in the User-Agent.
const ProjectURL = "https://github.com/msitfeed/msitfeed"

// Config is the whole configuration. Field tags name the TOML key; the
// environment variable is MSITFEED_ + the dotted key upper-cased with "."
// replaced by "_".
type Config struct {
	Database string `toml:"database"`
	Listen   string `toml:"listen"`
	BaseURL  string `toml:"base_url"`
	Secret   string `toml:"secret"`
	// Instance names this process in `msitfeed status` (the scheduler
	// lease, the jobs it ran); empty means host:pid.
	Instance string `toml:"instance"`

	// The pool of database connections: at most DatabaseMaxConns open (0:
	// the engine's default, 20 on PostgreSQL and no limit on SQLite),
	// DatabaseMaxIdleConns kept idle, each replaced after
	// DatabaseConnMaxLifetime (0: never); connecting to PostgreSQL gives
	// up after DatabaseConnectTimeout.
	DatabaseMaxConns        int           `toml:"database_max_conns"`
	DatabaseMaxIdleConns    int           `toml:"database_max_idle_conns"`
	DatabaseConnMaxLifetime time.Duration `toml:"database_conn_max_lifetime"`
	DatabaseConnectTimeout  time.Duration `toml:"database_connect_timeout"`

	Source   Source           `toml:"source"`
	Boards   map[string]Board `toml:"boards"`
	Feeds    Feeds            `toml:"feeds"`
	SMTP     SMTP             `toml:"smtp"`
	Mail     Mail             `toml:"mail"`
	Schedule Schedule         `toml:"schedule"`
	Web      Web              `toml:"web"`
}

// Web configures the public pages.
type Web struct {
	// ClientIPHeader is the header a trusted reverse proxy sets to the
	// client's address (X-Real-IP or X-Forwarded-For); empty means the
	// connection's address. Rate limits key on it.
	ClientIPHeader string `toml:"client_ip_header"`

	// WebSub runs the built-in WebSub hub at <base_url>/websub, which every
	// feed names as its hub (see websub.go for the other keys).
	WebSub bool `toml:"websub"`
	// WebSubHubs are external hubs every feed names too; each is pinged
	// (hub.mode=publish) when a feed changes.
	WebSubHubs []string `toml:"websub_hubs"`
	// A subscription's lease is what the subscriber asks for, within
	// WebSubLeaseMin and WebSubLeaseMax; WebSubLeaseDefault if it asks none.
	WebSubLeaseDefault time.Duration `toml:"websub_lease_default"`
	WebSubLeaseMin     time.Duration `toml:"websub_lease_min"`
	WebSubLeaseMax     time.Duration `toml:"websub_lease_max"`
	// WebSubAllowPrivate lets callbacks resolve to loopback, link-local and
	// private addresses (tests, a private network); off, they are refused.
	WebSubAllowPrivate bool `toml:"websub_allow_private"`
	// WebSubMaxSubscriptions and WebSubMaxPerHost cap the subscriptions the
	// hub keeps, in total and per callback host.
	WebSubMaxSubscriptions int `toml:"websub_max_subscriptions"`
	WebSubMaxPerHost       int `toml:"websub_max_per_host"`
}

// Source configures the crawler.
type Source struct {
	URL          string        `toml:"url"`
	Rate         float64       `toml:"rate"`
	Pages        int           `toml:"pages"`
	Contact      string        `toml:"contact"`
	Timeout      time.Duration `toml:"timeout"`
	Retries      int           `toml:"retries"`
	MaxBytes     int64         `toml:"max_bytes"`
	Backoff      time.Duration `toml:"backoff"` // first retry waits up to this; doubles each time
	IgnoreRobots bool          `toml:"ignore_robots"`
	// Each crawl fetches again up to RevisitMax stored posts per board,
	// published in the last RevisitDays days and not fetched for
	// RevisitAfter, to notice body-only edits. RevisitMax 0 turns it off.
	RevisitDays  int           `toml:"revisit_days"`
	RevisitAfter time.Duration `toml:"revisit_after"`
	RevisitMax   int           `toml:"revisit_max"`
}

// Feeds configures rendering.
type Feeds struct {
	Limit int `toml:"limit"`
}

// SMTP configures outgoing mail.
type SMTP struct {
	Transport   string        `toml:"transport"` // smtp or file
	Dir         string        `toml:"dir"`       // where the file transport writes
	Host        string        `toml:"host"`
	Port        int           `toml:"port"`
	Username    string        `toml:"username"`
	Password    string        `toml:"password"`
	TLS         string        `toml:"tls"`     // none, starttls, tls
	CAFile      string        `toml:"ca_file"` // PEM certificates to trust for the server instead of the system's
	Timeout     time.Duration `toml:"timeout"`
	Concurrency int           `toml:"concurrency"`
	Rate        float64       `toml:"rate"` // messages per second, 0 = unlimited
	Retries     int           `toml:"retries"`
	Backoff     time.Duration `toml:"backoff"` // first wait before a retry; doubles each time
}

// Mail configures what the digest says and who it is from.
type Mail struct {
	From        string `toml:"from"`
	ReplyTo     string `toml:"reply_to"`
	Templates   string `toml:"templates"`
	Unsubscribe string `toml:"unsubscribe"` // mailto address for List-Unsubscribe
	// DKIMDomain, DKIMSelector and DKIMKey (a PEM file holding an RSA key
	// of 2048 bits or more, or an Ed25519 key) sign every mail with DKIM
	// when all three are set; see DKIMEnabled.
	DKIMDomain   string `toml:"dkim_domain"`
	DKIMSelector string `toml:"dkim_selector"`
	DKIMKey      string `toml:"dkim_key"`
}

// Schedule holds cron specs, interpreted in Asia/Seoul, and the lease
// that makes one of several instances on one database run them.
type Schedule struct {
	Crawl  string `toml:"crawl"`
	Digest string `toml:"digest"`
	// Lease is how long the scheduler lease outlives an instance that
	// stopped refreshing it (killed, or cut off from the database): a
	// standby instance takes the jobs over at most 4/3 of it later.
	Lease time.Duration `toml:"lease"`
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Database: "msitfeed.db",
		Listen:   "127.0.0.1:8080",

		DatabaseMaxIdleConns:    4,
		DatabaseConnMaxLifetime: 30 * time.Minute,
		DatabaseConnectTimeout:  5 * time.Second,
		Source: Source{
			URL:      "https://www.msit.go.kr",
			Rate:     1,
			Pages:    3,
			Contact:  ProjectURL,
			Timeout:  30 * time.Second,
			Retries:  4,
			MaxBytes: 8 << 20,
			Backoff:  time.Second,

			RevisitDays:  14,
			RevisitAfter: 24 * time.Hour,
			RevisitMax:   10,
		},
		Boards: map[string]Board{},
		Feeds:  Feeds{Limit: 50},
		SMTP: SMTP{
			Transport:   "smtp",
			Host:        "localhost",
			Port:        25,
			TLS:         "starttls",
			Timeout:     30 * time.Second,
			Concurrency: 4,
			Retries:     5,
			Backoff:     5 * time.Second,
		},
		Schedule: Schedule{Crawl: "*/30 * * * *", Digest: "0 9 * * MON", Lease: 15 * time.Second},
		Web:      defaultWeb(),
	}
}

// Load builds the configuration: defaults, then the TOML file at path (if
// path is not empty), then MSITFEED_* variables from environ, then
// validation. Every error is one line naming the key or file to fix.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return c, fmt.Errorf("config file %s: unknown key %q", path, und[0].String())
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return c, err
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Listen
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	for slug, b := range c.Boards {
		if !IsBuiltinBoard(slug) && b.Lang == "" {
			b.Lang = "en"
			c.Boards[slug] = b
		}
	}
	return c, c.Validate()
}

// Validate checks every value once; the error names the key to fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config %s: "+format, append([]any{key}, a...)...))
	}
	if c.Database == "" {
		bad("database", "must name an SQLite file or a postgres:// URL")
	}
	if c.DatabaseMaxConns < 0 {
		bad("database_max_conns", "must be 0 (the engine's default) or more, got %d", c.DatabaseMaxConns)
	}
	if c.DatabaseMaxIdleConns < 0 {
		bad("database_max_idle_conns", "must not be negative, got %d", c.DatabaseMaxIdleConns)
	}
	if c.DatabaseConnMaxLifetime < 0 {
		bad("database_conn_max_lifetime", "must be 0 (never) or positive, like 30m")
	}
	if c.DatabaseConnectTimeout < time.Second {
		bad("database_connect_timeout", "must be 1s or more, like 5s")
	}
	if c.Schedule.Lease < time.Second {
		bad("schedule.lease", "must be 1s or more, like 15s")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base_url", "%q is not an http(s) URL", c.BaseURL)
	}
	if u, err := url.Parse(c.Source.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("source.url", "%q is not an http(s) URL", c.Source.URL)
	}
	if c.Source.Rate <= 0 {
		bad("source.rate", "must be above 0 requests per second, got %v", c.Source.Rate)
	}
	if c.Source.Pages < 1 {
		bad("source.pages", "must be at least 1, got %d", c.Source.Pages)
	}
	if c.Source.Timeout <= 0 {
		bad("source.timeout", "must be positive")
	}
	if c.Source.Retries < 0 {
		bad("source.retries", "must not be negative")
	}
	if c.Source.Backoff <= 0 {
		bad("source.backoff", "must be positive, like 1s")
	}
	if c.Source.MaxBytes <= 0 {
		bad("source.max_bytes", "must be positive")
	}
	if c.Source.RevisitMax < 0 {
		bad("source.revisit_max", "must be 0 (off) or more, got %d", c.Source.RevisitMax)
	}
	if c.Source.RevisitDays < 0 {
		bad("source.revisit_days", "must not be negative, got %d", c.Source.RevisitDays)
	}
	if c.Source.RevisitAfter <= 0 {
		bad("source.revisit_after", "must be positive, like 24h")
	}
	c.validateBoards(bad)
	c.Web.validateWebSub(bad)
	if c.Feeds.Limit < 1 || c.Feeds.Limit > 500 {
		bad("feeds.limit", "must be between 1 and 500, got %d", c.Feeds.Limit)
	}
	switch c.SMTP.Transport {
	case "smtp", "file":
	default:
		bad("smtp.transport", "must be smtp or file, got %q", c.SMTP.Transport)
	}
	switch c.SMTP.TLS {
	case "none", "starttls", "tls":
	default:
		bad("smtp.tls", "must be none, starttls or tls, got %q", c.SMTP.TLS)
	}
	if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
		bad("smtp.port", "must be 1-65535, got %d", c.SMTP.Port)
	}
	if c.SMTP.Concurrency < 1 {
		bad("smtp.concurrency", "must be at least 1")
	}
	if c.SMTP.Rate < 0 {
		bad("smtp.rate", "must not be negative")
	}
	if c.SMTP.Retries < 0 {
		bad("smtp.retries", "must not be negative")
	}
	if c.SMTP.Backoff <= 0 {
		bad("smtp.backoff", "must be positive, like 5s")
	}
	if c.SMTP.Timeout <= 0 {
		bad("smtp.timeout", "must be positive, like 30s")
	}
	for key, v := range map[string]string{"mail.from": c.Mail.From, "mail.reply_to": c.Mail.ReplyTo, "mail.unsubscribe": c.Mail.Unsubscribe} {
		if v != "" {
			if _, err := mail.ParseAddress(v); err != nil {
				bad(key, "%q is not an email address", v)
			}
		}
	}
	c.Mail.validateDKIM(bad)
	return errors.Join(errs...)
}

// applyEnv sets each field whose MSITFEED_ variable is present.
func applyEnv(c *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "MSITFEED_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	if err := setFromEnv(reflect.ValueOf(c).Elem(), "", env); err != nil {
		return err
	}
	return applyBoardEnv(c, env)
}

var durationType = reflect.TypeOf(time.Duration(0))

func setFromEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("toml")
		if key == "" {
			continue
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := setFromEnv(fv, key, env); err != nil {
				return err
			}
			continue
		}
		name := "MSITFEED_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setValue(fv, raw); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	return nil
}

func setValue(fv reflect.Value, raw string) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s", raw)
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(raw)
	case fv.Kind() == reflect.Int || fv.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		fv.SetInt(n)
	case fv.Kind() == reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		fv.SetFloat(n)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		fv.SetBool(b)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		// A list: values separated by commas or white space.
		parts := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
		fv.Set(reflect.ValueOf(parts))
	case fv.Kind() == reflect.Map:
		return nil
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}
