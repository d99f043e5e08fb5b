// Package mailer owns subscribers (their tables, import and export), the
// digest of new posts, the mail templates, SMTP delivery with go-mail, the
// delivery ledger that makes a digest reach each subscriber exactly once, and
// the signed tokens in mail links. It reads items through feeds but never
// writes them.
package mailer

import "time"

// Status is a subscriber's state.
type Status string

// Subscriber states. Unsubscribed and bounced addresses stay as suppression
// records.
const (
	StatusPending      Status = "pending"
	StatusActive       Status = "active"
	StatusUnsubscribed Status = "unsubscribed"
	StatusBounced      Status = "bounced"
)

// Origin says how a subscriber came in.
type Origin string

// Subscriber origins.
const (
	OriginCLI    Origin = "cli"
	OriginImport Origin = "import"
	OriginWeb    Origin = "web"
)

// Subscriber is one address on the list.
type Subscriber struct {
	ID     int64
	UID    string // random public id carried in tokens
	Email  string // normalised address
	Name   string
	Status Status
	Boards []string // board slugs; empty means all boards
	// Match is a keyword filter: a regular expression a post's title or
	// summary must match to be in this subscriber's digest (the feeds'
	// ?filter=, feeds.NewKeywordFilter); empty means every post.
	Match        string
	Origin       Origin
	Created      time.Time
	Confirmed    time.Time
	Unsubscribed time.Time
	Bounces      int // permanent failures in a row
}

// WantsBoard reports whether s receives posts of board.
func (s Subscriber) WantsBoard(board string) bool {
	if len(s.Boards) == 0 {
		return true
	}
	for _, b := range s.Boards {
		if b == board {
			return true
		}
	}
	return false
}
