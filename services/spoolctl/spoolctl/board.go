package spoolctl

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/term"
)

// board shows the progress of several pieces of work at once, a labelled
// row each. On a terminal it redraws all its rows in place, each a bar and
// its description (see progress.describe), cut to the terminal's width.
// Anywhere else (a pipe, a file, a CI log) each row writes plain lines as a
// meter does, after its label, so that the rows' lines interleave but never
// mix. Safe for concurrent use.
type board struct {
	mu     sync.Mutex
	w      io.Writer
	labels []string // padded to one width
	// On a terminal:
	tty   bool
	cols  int        // the terminal's width; 0 when not known
	rows  []progress // the last progress of each row
	drawn bool       // the rows are on the screen, the cursor below them
	// Elsewhere:
	meters []*meter // one per row
}

// newBoard is a board on w with a row for each label, redrawn in place
// when w is a terminal.
func newBoard(w io.Writer, labels ...string) *board {
	width := 0
	for _, l := range labels {
		width = max(width, utf8.RuneCountInString(l))
	}
	b := &board{w: w}
	for _, l := range labels {
		b.labels = append(b.labels, l+strings.Repeat(" ", width-utf8.RuneCountInString(l)))
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			b.cols = cols
		}
		b.rows = make([]progress, len(labels))
		for i := range b.rows {
			b.rows[i].eta = -1
		}
		return b
	}
	for _, l := range b.labels {
		b.meters = append(b.meters, newMeter(rowWriter{b, l + " "}))
	}
	return b
}

// show shows p on row i.
func (b *board) show(i int, p progress) {
	if !b.tty {
		b.meters[i].show(p) // its lines come back through a rowWriter
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows[i] = p
	b.draw()
}

// close ends the board: on a terminal the rows stay as last drawn, the
// cursor below them; elsewhere each row's change held back is written.
func (b *board) close() {
	if !b.tty {
		for _, m := range b.meters {
			m.close()
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.drawn {
		b.draw()
	}
}

// draw writes every row, over the last drawing, in one write.
func (b *board) draw() {
	var sb strings.Builder
	if b.drawn {
		fmt.Fprintf(&sb, "\x1b[%dA", len(b.rows)) // up to the first row
	}
	for i := range b.rows {
		sb.WriteString("\r\x1b[2K") // the whole line cleared
		sb.WriteString(b.row(i))
		sb.WriteString("\n")
	}
	_, _ = io.WriteString(b.w, sb.String())
	b.drawn = true
}

// row is row i's drawing: its label, percentage, bar and description,
// narrower than the terminal, so that it never wraps.
func (b *board) row(i int) string {
	p, label := b.rows[i], b.labels[i]
	desc, bar := p.describe(), barWidth
	if b.cols > 0 {
		// The bar gives way first, down to barMin, so that the
		// description stays whole where it can.
		bar = min(bar, max(barMin, b.cols-utf8.RuneCountInString(label)-barFixed-utf8.RuneCountInString(desc)-1))
	}
	full := int(min(max(p.fraction, 0), 1)*float64(bar) + 1e-9)
	line := fmt.Sprintf("%s %3d%% |%s%s|  %s", label, p.percent(), strings.Repeat("█", full), strings.Repeat(" ", bar-full), desc)
	if r := []rune(line); b.cols > 0 && len(r) >= b.cols {
		line = string(r[:max(b.cols-2, 0)]) + "…"
	}
	return line
}

// rowWriter writes a row's plain lines, each after the row's label, one
// whole line at a time.
type rowWriter struct {
	b     *board
	label string
}

func (r rowWriter) Write(p []byte) (int, error) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	var sb strings.Builder
	for line := range strings.SplitAfterSeq(string(p), "\n") {
		if line != "" {
			sb.WriteString(r.label + line)
		}
	}
	if _, err := io.WriteString(r.b.w, sb.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
