package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in a policy file: 1-based line and column, zero when the
// thing was not read from a file (a policy built in Go, say).
type Pos struct {
	Line, Col int
}

// Problem is one thing wrong with a policy, located in its file.
type Problem struct {
	File string
	Line int
	Col  int
	Msg  string
}

// String formats the problem as "FILE:LINE:COL: msg", the shape compilers and
// editors understand.
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
}

// Problems is every problem found in a policy, in file order. It is the
// error Load, LoadBytes and Compile return.
type Problems []Problem

// Error joins the problems, one "FILE:LINE:COL: msg" per line.
func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// sort orders problems by position, keeping the order of problems found at
// the same place, and drops exact duplicates.
func (ps Problems) sort() Problems {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
	return slices.Compact(ps)
}

// problemList collects problems for one file.
type problemList struct {
	file string
	list Problems
}

func (l *problemList) addf(pos Pos, format string, args ...any) {
	l.list = append(l.list, Problem{File: l.file, Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems as an error, or nil when there are none.
func (l *problemList) err() error {
	if len(l.list) == 0 {
		return nil
	}
	return l.list.sort()
}
