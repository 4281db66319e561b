package route

import (
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// fastRe matches, without the regexp engine, a path_regex of the shapes
// routes mostly use: "/svc19/[0-9]+", "/users/[^/]+/orders", "/static/.*",
// "/api/[a-z0-9-]{3,}". RE2 spends most of a lookup's time on such a regex
// (doOnePass, 150-250 ns for "/svc19/12345"); one byte scan takes ~20 ns.
//
// The regex is a sequence of items, each a literal byte string or a byte
// class repeated min..max times, matched against the whole path in one
// greedy left-to-right pass. compileFast accepts only regexes for which that
// pass gives exactly the answer of regexp's anchored full match:
//
//   - A class item is followed by the end or by a literal whose first byte
//     is not in the class, so the class's run must stop exactly where the
//     greedy scan stops: there is never a choice to backtrack over.
//   - regexp reads runes (an invalid byte reads as U+FFFD) while fastRe
//     reads bytes. A class of ASCII runes only never matches a byte >= 0x80
//     (such a byte starts a rune >= 0x80 or is U+FFFD), and then bytes and
//     runes count the same. A class holding every rune >= 0x80 matches every
//     byte >= 0x80; its run ends at an ASCII byte or the end, both rune
//     boundaries, but holds fewer runes than bytes, so only the counts "0 or
//     more" and "1 or more" are safe. Every other class is refused.
//   - Literal runes are compared as their UTF-8 bytes, which is what regexp
//     does for a valid rune other than U+FFFD (U+FFFD also matches invalid
//     bytes; a surrogate matches nothing), so those two are refused, as are
//     literal letters under (?i).
//
// Anything else (alternation, word boundaries, (?m) anchors, classes next to
// each other, ...) is refused and the route keeps using regexp. A fastRe is
// immutable after compileFast.
type fastRe struct {
	items []fastItem
}

// fastItem is a literal when lit is non-empty, else set repeated min..max
// times (max < 0: no upper bound).
type fastItem struct {
	lit      string
	set      byteSet
	min, max int
}

// byteSet is a set of bytes, one bit each.
type byteSet [4]uint64

func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }

// match reports whether the whole of p matches. It never allocates.
func (f *fastRe) match(p []byte) bool {
	i := 0
	for k := range f.items {
		it := &f.items[k]
		if it.lit != "" {
			if len(p)-i < len(it.lit) || string(p[i:i+len(it.lit)]) != it.lit {
				return false
			}
			i += len(it.lit)
			continue
		}
		j := i
		for j < len(p) && it.set.has(p[j]) {
			j++
		}
		if n := j - i; n < it.min || it.max >= 0 && n > it.max {
			return false
		}
		i = j
	}
	return i == len(p)
}

// piece is an item before byte conversion: literal runes, or a rune class
// (sorted [lo, hi] pairs as regexp/syntax gives them) repeated min..max.
type piece struct {
	lit      []rune
	class    []rune
	min, max int
}

// compileFast returns the fast matcher of pattern, a path_regex that
// regexp.Compile accepts, or nil when pattern is not of a shape it can match
// exactly like regexp.MustCompile("^(?:" + pattern + ")$").
func compileFast(pattern string) *fastRe {
	re, err := syntax.Parse(pattern, syntax.Perl) // the flags regexp.Compile uses
	if err != nil {
		return nil
	}
	// Simplify turns x{n,m} into copies of x, x+, x* and nested x?, which
	// classRepeat folds back into one count range.
	re = re.Simplify()
	var nodes []*syntax.Regexp
	flatten(re, &nodes)
	// The route's regex is anchored anyway, so \A or ^ (Perl flags: not
	// multi-line) at the very start and \z or $ at the very end are no-ops;
	// anywhere else they would need real handling.
	for len(nodes) > 0 && nodes[0].Op == syntax.OpBeginText {
		nodes = nodes[1:]
	}
	for len(nodes) > 0 && nodes[len(nodes)-1].Op == syntax.OpEndText {
		nodes = nodes[:len(nodes)-1]
	}
	var ps []piece
	for _, n := range nodes {
		var p piece
		switch n.Op {
		case syntax.OpLiteral:
			if !plainLiteral(n) {
				return nil
			}
			p.lit = n.Rune
		default:
			cl, lo, hi, ok := classRepeat(n)
			if !ok {
				return nil
			}
			p.class, p.min, p.max = cl, lo, hi
		}
		ps = appendPiece(ps, p)
	}
	return fastFromPieces(ps)
}

// flatten appends the sequence re stands for to out: nested concatenations
// spread out, capture groups unwrapped (fastRe reports no submatches),
// empty matches dropped. The caller vets each node it leaves.
func flatten(re *syntax.Regexp, out *[]*syntax.Regexp) {
	switch re.Op {
	case syntax.OpConcat:
		for _, s := range re.Sub {
			flatten(s, out)
		}
	case syntax.OpCapture:
		flatten(re.Sub[0], out)
	case syntax.OpEmptyMatch:
	default:
		*out = append(*out, re)
	}
}

// plainLiteral reports whether re, an OpLiteral, matches exactly the UTF-8
// bytes of its runes: no U+FFFD, no surrogate, and not case-folded. Under
// (?i) a rune without another case ('/', '1') is still exact: regexp's
// compiler drops FoldCase for such a rune, and so "(?i)/" is plain here.
func plainLiteral(re *syntax.Regexp) bool {
	if len(re.Rune) == 0 {
		return false
	}
	for _, r := range re.Rune {
		if r == utf8.RuneError || !utf8.ValidRune(r) {
			return false
		}
		if re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
			return false
		}
	}
	return true
}

// classRepeat recognises re as one rune class repeated lo..hi times (hi < 0:
// unbounded) and returns the class. Counts combine as ranges: a concat adds
// them, x? x* x+ over a range starting at 0 or 1 stay contiguous. A range
// they would make non-contiguous ({0} and 2..3 for (?:xx|xxx)?) is refused.
func classRepeat(re *syntax.Regexp) (class []rune, lo, hi int, ok bool) {
	switch re.Op {
	case syntax.OpCharClass:
		return re.Rune, 1, 1, len(re.Rune) > 0
	case syntax.OpAnyCharNotNL: // . without (?s)
		return []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}, 1, 1, true
	case syntax.OpAnyChar: // . with (?s)
		return []rune{0, unicode.MaxRune}, 1, 1, true
	case syntax.OpLiteral: // only inside a repeat: "a+" is a+ of class [a]
		if len(re.Rune) != 1 || !plainLiteral(re) {
			return nil, 0, 0, false
		}
		r := re.Rune[0]
		return []rune{r, r}, 1, 1, true
	case syntax.OpCapture:
		return classRepeat(re.Sub[0])
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return nil, 0, 0, false
		}
		class, lo, hi, ok = classRepeat(re.Sub[0])
		for _, s := range re.Sub[1:] {
			c, l, h, sok := classRepeat(s)
			if !ok || !sok || !slices.Equal(c, class) {
				return nil, 0, 0, false
			}
			lo, hi = lo+l, addMax(hi, h)
		}
		return class, lo, hi, ok
	case syntax.OpQuest, syntax.OpStar, syntax.OpPlus:
		c, l, h, ok := classRepeat(re.Sub[0])
		if !ok || l > 1 || h == 0 {
			return nil, 0, 0, false
		}
		switch re.Op {
		case syntax.OpQuest:
			return c, 0, h, true
		case syntax.OpStar:
			return c, 0, -1, true
		default:
			return c, l, -1, true
		}
	}
	return nil, 0, 0, false
}

// addMax adds two upper bounds, either of which may be unbounded (< 0).
func addMax(a, b int) int {
	if a < 0 || b < 0 {
		return -1
	}
	return a + b
}

// appendPiece appends p to ps, joining it to the last piece when both are
// literals or both repeat the same class: "[0-9][0-9]+" is [0-9]{2,}.
func appendPiece(ps []piece, p piece) []piece {
	if len(ps) > 0 {
		last := &ps[len(ps)-1]
		switch {
		case last.lit != nil && p.lit != nil:
			last.lit = append(slices.Clip(last.lit), p.lit...)
			return ps
		case last.class != nil && p.class != nil && slices.Equal(last.class, p.class):
			last.min, last.max = last.min+p.min, addMax(last.max, p.max)
			return ps
		}
	}
	return append(ps, p)
}

// fastFromPieces converts the pieces to byte items and checks the rules of
// fastRe; nil when one fails.
func fastFromPieces(ps []piece) *fastRe {
	f := &fastRe{items: make([]fastItem, 0, len(ps))}
	for _, p := range ps {
		if p.lit != nil {
			f.items = append(f.items, fastItem{lit: string(p.lit)})
			continue
		}
		set, ok := classBytes(p.class, p.min, p.max)
		if !ok {
			return nil
		}
		f.items = append(f.items, fastItem{set: set, min: p.min, max: p.max})
	}
	for k := 0; k+1 < len(f.items); k++ {
		it, next := &f.items[k], &f.items[k+1]
		if it.lit != "" {
			continue
		}
		// Two classes in a row were not joined (different sets), so the
		// split between them would be a choice. A literal starting with a
		// byte of the class could be eaten by the greedy scan.
		if next.lit == "" || it.set.has(next.lit[0]) {
			return nil
		}
	}
	return f
}

// classBytes returns the bytes standing for class repeated min..max times,
// when byte-wise matching is exact (see fastRe).
func classBytes(class []rune, min, max int) (set byteSet, ok bool) {
	high := false // every rune >= 0x80 is in the class
	for i := 0; i+1 < len(class); i += 2 {
		lo, hi := class[i], class[i+1]
		if lo <= utf8.RuneSelf && hi == unicode.MaxRune {
			high = true
		}
		for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
			set.add(byte(r))
		}
		if hi >= utf8.RuneSelf && !high {
			return set, false // holds some non-ASCII runes but not all
		}
	}
	if high {
		if min > 1 || max >= 0 {
			return set, false
		}
		for b := utf8.RuneSelf; b < 256; b++ {
			set.add(byte(b))
		}
	}
	return set, true
}
