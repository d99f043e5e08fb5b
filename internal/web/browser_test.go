package web

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/msitfeed/msitfeed/feeds"
	"github.com/msitfeed/msitfeed/mailer"
)

// chromiumPath is the Debian chromium the browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium with a fresh profile and returns a
// tab context that ends with the test (or after timeout). Page scripts are
// switched off: every page must work without JavaScript. Outside CI a
// missing browser skips the test; in CI (env CI set) it fails it.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser test: %s is missing (install Debian chromium): %v", chromiumPath, err)
		}
		t.Skipf("browser test skipped: %s is missing", chromiumPath)
	}
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1024, 768),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	// Cancelling the allocator waits for the browser to exit, so the
	// profile directory is free to remove (TempDir's cleanup runs later).
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	return ctx
}

// must runs steps and fails the test at the first error, saying what was
// being done.
func must(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// html returns the outer HTML of the first element matching css.
func html(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("read %s: %v", css, err)
	}
	return s
}

// submit clicks a submit button and waits for the page the form leads to,
// failing the test unless it comes with status want.
func submit(t *testing.T, ctx context.Context, button string, want int64) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button)))
	if err != nil {
		t.Fatalf("click %s: %v", button, err)
	}
	if resp.Status != want {
		t.Fatalf("click %s: status %d, want %d", button, resp.Status, want)
	}
}

// TestBrowser walks a reader through the pages in headless Chromium with
// JavaScript off: the index and its feeds, subscribing through the form,
// the confirmation link from the mail, changing boards, unsubscribing, and
// every page, a feed's page among them, at a phone's width. (Feeds opened
// in a tab: TestBrowserFeedPage.)
func TestBrowser(t *testing.T) {
	ctx := newBrowser(t, 30*time.Second)
	e := newEnv(t, nil)

	t.Run("the index shows the boards, their feeds and autodiscovery links", func(t *testing.T) {
		must(t, ctx, "open the index", chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.CSS("#subscribe form")))
		links, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll(`head link[rel="alternate"]`)))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, l := range links {
			seen[l["href"]] = l["type"]
		}
		for _, slug := range append([]string{feeds.AllSlug}, feeds.BoardSlugs()...) {
			for ext, typ := range map[string]string{"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"} {
				if got := seen[e.base+"/feeds/"+slug+"."+ext]; got != typ {
					t.Errorf("autodiscovery of %s.%s: type %q, want %q", slug, ext, got, typ)
				}
			}
		}
		if len(links) != 18 {
			t.Errorf("%d autodiscovery links, want 18", len(links))
		}
		table := html(t, ctx, "table.boards")
		for _, b := range feeds.DefaultBoards() {
			if !strings.Contains(table, escaped(b.Name)) || !strings.Contains(table, `href="/feeds/`+b.Slug+`.rss"`) {
				t.Errorf("the boards table lacks %s", b.Name)
			}
		}
		if latest := html(t, ctx, "ul.latest"); !strings.Contains(latest, "MSIT announces 6G strategy") {
			t.Errorf("latest posts: %s", latest)
		}
	})

	var uid string
	t.Run("subscribing through the form sends a confirmation mail", func(t *testing.T) {
		must(t, ctx, "fill in the form",
			chromedp.SendKeys(chromedp.CSS("#email"), "browser@example.org"),
			chromedp.SendKeys(chromedp.CSS("#name"), "Bea Rowser"),
			chromedp.Click(chromedp.CSS(`input[name="board"][value="photo"]`)),
		)
		submit(t, ctx, `#subscribe button[type="submit"]`, 200)
		if h1 := html(t, ctx, "h1"); !strings.Contains(h1, "Check your inbox") {
			t.Fatalf("after subscribing: %s", h1)
		}
		s := e.sub("browser@example.org")
		uid = s.UID
		if s.Status != mailer.StatusPending || s.Name != "Bea Rowser" || strings.Join(s.Boards, ",") != "notice,press,trends,newsletter" {
			t.Errorf("stored %s %q %v, want pending, the name, every board but photo", s.Status, s.Name, s.Boards)
		}
	})
	if uid == "" {
		t.FailNow()
	}

	t.Run("the link in the mail shows a button, and the button confirms", func(t *testing.T) {
		must(t, ctx, "open the confirmation link", chromedp.Navigate(e.confirmURL(1)), chromedp.WaitVisible(chromedp.CSS(`main form button`)))
		if s := e.sub("browser@example.org"); s.Status != mailer.StatusPending {
			t.Fatalf("opening the link made the subscriber %s", s.Status)
		}
		submit(t, ctx, `main form button`, 200)
		if h1 := html(t, ctx, "h1"); !strings.Contains(h1, "Subscription confirmed") {
			t.Fatalf("after confirming: %s", h1)
		}
		if s := e.sub("browser@example.org"); s.Status != mailer.StatusActive {
			t.Errorf("status %s, want active", s.Status)
		}
	})

	t.Run("the preferences page changes the boards", func(t *testing.T) {
		_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`a[href^="/preferences/"]`)))
		if err != nil {
			t.Fatalf("follow the preferences link: %v", err)
		}
		form := html(t, ctx, "main form")
		for _, want := range []string{`value="press" checked`, `value="notice" checked`, `value="photo">`} {
			if !strings.Contains(form, want) {
				t.Errorf("preferences form lacks %s:\n%s", want, form)
			}
		}
		must(t, ctx, "untick notice, tick photo",
			chromedp.Click(chromedp.CSS(`input[name="board"][value="notice"]`)),
			chromedp.Click(chromedp.CSS(`input[name="board"][value="photo"]`)),
		)
		submit(t, ctx, `button[value="save"]`, 200)
		if ok := html(t, ctx, "main"); !strings.Contains(ok, "Your boards are saved") {
			t.Errorf("after saving: %s", ok)
		}
		if got := strings.Join(e.sub("browser@example.org").Boards, ","); got != "press,photo,trends,newsletter" {
			t.Errorf("boards %s, want press,photo,trends,newsletter", got)
		}
	})

	t.Run("the unsubscribe link shows a button, and the button unsubscribes", func(t *testing.T) {
		must(t, ctx, "open the unsubscribe link",
			chromedp.Navigate(e.base+"/unsubscribe/"+e.sign(mailer.PurposeUnsubscribe, uid)),
			chromedp.WaitVisible(chromedp.CSS(`main form button`)))
		if s := e.sub("browser@example.org"); s.Status != mailer.StatusActive {
			t.Fatalf("opening the link made the subscriber %s", s.Status)
		}
		submit(t, ctx, `main form button`, 200)
		if h1 := html(t, ctx, "h1"); !strings.Contains(h1, "Unsubscribed") {
			t.Fatalf("after unsubscribing: %s", h1)
		}
		if s := e.sub("browser@example.org"); s.Status != mailer.StatusUnsubscribed {
			t.Errorf("status %s, want unsubscribed", s.Status)
		}
	})

	t.Run("every page fits a phone's width in one column", func(t *testing.T) {
		const phoneWidth = 360
		must(t, ctx, "emulate a phone", chromedp.EmulateViewport(phoneWidth, 740, chromedp.EmulateMobile, chromedp.EmulatePortrait))
		defer chromedp.Do(ctx, chromedp.ResetViewport())
		for _, p := range []string{"/", "/preferences/" + e.sign(mailer.PurposePreferences, uid), "/feeds/all.atom", "/confirm/bad"} {
			must(t, ctx, "open "+p, chromedp.Navigate(e.base+p), chromedp.WaitVisible(chromedp.CSS("h1")))
			m, err := chromedp.Call(ctx, page.GetLayoutMetrics, cdp.Empty{})
			if err != nil {
				t.Fatal(err)
			}
			// A mobile browser widens the layout viewport to fit wide content,
			// so compare with the screen, not with the viewport.
			if w := m.CSSContentSize.Width; w > phoneWidth {
				t.Errorf("%s is %.0f CSS px wide on a %d px screen: it scrolls sideways", p, w, phoneWidth)
			}
		}
	})
}

// escaped is s as html/template and the browser's serialiser write it.
func escaped(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }
