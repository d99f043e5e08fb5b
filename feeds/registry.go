package feeds

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Registry is the set of boards msitfeed follows: the built-in boards first,
// in DefaultBoards order, then the boards added by configuration in slug
// order. It never changes once built; every method returns copies.
//
// A nil *Registry is valid and holds the built-in boards only, so code built
// before configured boards existed (and its tests) works unchanged.
type Registry struct {
	boards []Board
	index  map[string]int // slug → position in boards
}

// slugPattern is what a board slug may be: it becomes a path segment
// (/feeds/<slug>.atom), a file name (feeds export), a metrics label, a
// configuration key and a value in comma-separated lists, so it is kept to
// lower-case letters, digits, '-' and '_'.
var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidSlug reports whether s can name a board: a safe path segment of
// at most 32 characters, and not AllSlug.
func ValidSlug(s string) bool { return s != AllSlug && slugPattern.MatchString(s) }

// ErrBadBoard is wrapped by NewRegistry's error for a configured board it
// refuses.
var ErrBadBoard = errors.New("bad board")

// builtin is the registry of the built-in boards alone; never modified.
var builtin = mustRegistry()

func mustRegistry() *Registry {
	r, err := NewRegistry()
	if err != nil {
		panic("feeds: built-in boards: " + err.Error())
	}
	return r
}

// NewRegistry returns the built-in boards followed by configured, which are
// marked Configured and ordered by slug. Each configured board needs a
// valid slug that no other board has (built-in or AllSlug), a name, and
// its mId and mPid; no two boards may address the same list (sCode, mId
// and mPid), built-in boards with known ids included.
func NewRegistry(configured ...Board) (*Registry, error) {
	r := &Registry{index: map[string]int{}}
	for _, b := range DefaultBoards() {
		r.index[b.Slug] = len(r.boards)
		r.boards = append(r.boards, b)
	}
	extra := slices.Clone(configured)
	slices.SortFunc(extra, func(a, b Board) int { return strings.Compare(a.Slug, b.Slug) })
	var errs []error
	for _, b := range extra {
		b.Configured = true
		if err := r.check(b); err != nil {
			errs = append(errs, fmt.Errorf("%w %s: %v", ErrBadBoard, b.Slug, err))
			continue
		}
		r.index[b.Slug] = len(r.boards)
		r.boards = append(r.boards, b)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// check says what is wrong with adding the configured board b to r.
func (r *Registry) check(b Board) error {
	_, taken := r.index[b.Slug] // not r.Has: that would make builtin refer to itself
	switch {
	case !ValidSlug(b.Slug):
		return fmt.Errorf("slug %q must be 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit, and not %q", b.Slug, AllSlug)
	case taken:
		return errors.New("slug already names a board")
	case strings.TrimSpace(b.Name) == "":
		return errors.New("no name")
	case !b.Resolved():
		return errors.New("mId and mPid are required")
	}
	for _, o := range r.boards {
		if o.Resolved() && o.Section() == b.Section() && o.MID == b.MID && o.MPID == b.MPID {
			return fmt.Errorf("same list (sCode=%s, mId=%s, mPid=%s) as board %s", b.Section(), b.MID, b.MPID, o.Slug)
		}
	}
	return nil
}

// reg returns r, or the built-in registry when r is nil.
func (r *Registry) reg() *Registry {
	if r == nil {
		return builtin
	}
	return r
}

// Boards returns every board in order.
func (r *Registry) Boards() []Board { return slices.Clone(r.reg().boards) }

// Slugs returns the slug of every board in order.
func (r *Registry) Slugs() []string {
	bs := r.reg().boards
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Slug
	}
	return out
}

// Has reports whether slug names a board of r (AllSlug is not a board).
func (r *Registry) Has(slug string) bool {
	_, ok := r.reg().index[slug]
	return ok
}

// Board returns the board named slug.
func (r *Registry) Board(slug string) (Board, bool) {
	rr := r.reg()
	i, ok := rr.index[slug]
	if !ok {
		return Board{}, false
	}
	return rr.boards[i], true
}

// Name returns the name of the board slug, or slug itself for a board r
// does not have (posts stored for a board since removed from the
// configuration).
func (r *Registry) Name(slug string) string {
	if b, ok := r.Board(slug); ok {
		return b.Name
	}
	return slug
}

// Section returns the board's sCode: "eng" when unset.
func (b Board) Section() string {
	if b.SCode == "" {
		return "eng"
	}
	return b.SCode
}

// Directory returns the path holding the board's list.do and view.do:
// "/eng/bbs" when unset.
func (b Board) Directory() string {
	if b.Dir == "" {
		return "/eng/bbs"
	}
	return b.Dir
}
