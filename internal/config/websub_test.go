package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWebSubDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Web
	if !w.WebSub || w.WebSubLeaseDefault != 240*time.Hour || w.WebSubLeaseMin != time.Hour ||
		w.WebSubLeaseMax != 720*time.Hour || w.WebSubAllowPrivate || len(w.WebSubHubs) != 0 {
		t.Errorf("web defaults = %+v, want the hub on, leases 10d within 1h..30d, no private callbacks, no external hubs", w)
	}
	if w.WebSubMaxSubscriptions < 1 || w.WebSubMaxPerHost < 1 {
		t.Errorf("caps = %d total, %d per host; want positive", w.WebSubMaxSubscriptions, w.WebSubMaxPerHost)
	}
}

func TestWebSubFromFileAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "msitfeed.toml")
	err := os.WriteFile(path, []byte(`
[web]
websub_hubs = ["https://pubsubhubbub.appspot.com/"]
websub_lease_default = "48h"
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"MSITFEED_WEB_WEBSUB=false", "MSITFEED_WEB_WEBSUB_ALLOW_PRIVATE=true",
		"MSITFEED_WEB_WEBSUB_LEASE_MIN=2h", "MSITFEED_WEB_WEBSUB_MAX_PER_HOST=7"})
	if err != nil {
		t.Fatal(err)
	}
	w := c.Web
	if w.WebSub || !w.WebSubAllowPrivate || w.WebSubLeaseDefault != 48*time.Hour || w.WebSubLeaseMin != 2*time.Hour || w.WebSubMaxPerHost != 7 {
		t.Errorf("web = %+v", w)
	}
	if !slices.Equal(w.WebSubHubs, []string{"https://pubsubhubbub.appspot.com/"}) {
		t.Errorf("hubs from the file = %q", w.WebSubHubs)
	}

	c, err = Load(path, []string{"MSITFEED_WEB_WEBSUB_HUBS=https://a.example/hub, https://b.example/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://a.example/hub", "https://b.example/"}; !slices.Equal(c.Web.WebSubHubs, want) {
		t.Errorf("hubs from the environment = %q, want %q (the variable replaces the file's list)", c.Web.WebSubHubs, want)
	}
}

func TestWebSubBadValuesNameTheKey(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		wantKey string
	}{
		{"a lease that is not a duration", []string{"MSITFEED_WEB_WEBSUB_LEASE_DEFAULT=10d"}, "MSITFEED_WEB_WEBSUB_LEASE_DEFAULT"},
		{"a default lease above the maximum", []string{"MSITFEED_WEB_WEBSUB_LEASE_DEFAULT=800h"}, "web.websub_lease_default"},
		{"a default lease below the minimum", []string{"MSITFEED_WEB_WEBSUB_LEASE_DEFAULT=30m"}, "web.websub_lease_default"},
		{"a minimum above the maximum", []string{"MSITFEED_WEB_WEBSUB_LEASE_MIN=800h", "MSITFEED_WEB_WEBSUB_LEASE_MAX=700h"}, "web.websub_lease_min"},
		{"a perpetual lease", []string{"MSITFEED_WEB_WEBSUB_LEASE_MAX=100000h"}, "web.websub_lease_max"},
		{"no subscriptions allowed", []string{"MSITFEED_WEB_WEBSUB_MAX_SUBSCRIPTIONS=0"}, "web.websub_max_subscriptions"},
		{"no subscriptions per host", []string{"MSITFEED_WEB_WEBSUB_MAX_PER_HOST=-1"}, "web.websub_max_per_host"},
		{"a hub that is not http", []string{"MSITFEED_WEB_WEBSUB_HUBS=ftp://hub.example/"}, "web.websub_hubs"},
		{"a hub that is not a URL", []string{"MSITFEED_WEB_WEBSUB_HUBS=hub.example"}, "web.websub_hubs"},
		{"a switch that is not a boolean", []string{"MSITFEED_WEB_WEBSUB=maybe"}, "MSITFEED_WEB_WEBSUB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("", tc.env)
			if err == nil {
				t.Fatalf("Load accepted %q", tc.env)
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("error %q does not name %s", err, tc.wantKey)
			}
		})
	}
}
