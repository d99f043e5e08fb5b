package mailer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msitfeed/msitfeed/internal/db"
)

// Purpose says what a token may be used for; a token for one purpose is not
// accepted for another.
type Purpose string

// Token purposes.
const (
	PurposeConfirm     Purpose = "confirm"
	PurposeUnsubscribe Purpose = "unsubscribe"
	PurposePreferences Purpose = "preferences"
)

// ErrBadToken is returned for any token that is forged, truncated, expired or
// for another purpose; callers show one plain message for all of them.
var ErrBadToken = errors.New("invalid or expired link")

// Tokens signs and verifies link tokens with HMAC-SHA256. A token carries the
// purpose, the subscriber's random UID and an expiry (0 = never), so it
// reveals nothing about other subscribers and cannot be guessed.
type Tokens struct {
	key []byte
	Now func() time.Time
}

// NewTokens returns Tokens keyed by secret.
func NewTokens(secret []byte) *Tokens {
	return &Tokens{key: secret, Now: time.Now}
}

// LoadSecret returns the configured secret, or the one stored in the
// database, creating and storing a random one on first run.
func LoadSecret(ctx context.Context, d *sql.DB, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	v, err := db.Setting(ctx, d, "secret")
	if err != nil {
		return nil, err
	}
	if v == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate secret: %w", err)
		}
		if v, err = db.SetSettingIfAbsent(ctx, d, "secret", hex.EncodeToString(b)); err != nil {
			return nil, err
		}
	}
	return []byte(v), nil
}

// Sign returns a token for purpose and uid valid for ttl (0 = no expiry).
func (t *Tokens) Sign(p Purpose, uid string, ttl time.Duration) string {
	var exp int64
	if ttl > 0 {
		exp = t.Now().Add(ttl).Unix()
	}
	payload := string(p) + "." + uid + "." + strconv.FormatInt(exp, 36)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(t.mac(payload))
}

// Verify checks token for purpose p and returns the subscriber UID it names.
func (t *Tokens) Verify(p Purpose, token string) (string, error) {
	enc, sig, ok := strings.Cut(token, ".")
	if !ok {
		return "", ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", ErrBadToken
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, t.mac(string(raw))) {
		return "", ErrBadToken
	}
	// Only the spelling Sign writes: base64 decoding alone also takes
	// other final characters and line breaks for the same bytes.
	if base64.RawURLEncoding.EncodeToString(raw) != enc || base64.RawURLEncoding.EncodeToString(mac) != sig {
		return "", ErrBadToken
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || Purpose(parts[0]) != p || parts[1] == "" {
		return "", ErrBadToken
	}
	exp, err := strconv.ParseInt(parts[2], 36, 64)
	if err != nil || (exp != 0 && t.Now().Unix() > exp) {
		return "", ErrBadToken
	}
	return parts[1], nil
}

func (t *Tokens) mac(payload string) []byte {
	h := hmac.New(sha256.New, t.key)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// NewUID returns a random public id for a subscriber.
func NewUID() string {
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
