package spoolctl

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is one piece of work's progress, as a meter shows it.
type progress struct {
	fraction    float64       // of the work done, 0..1
	done, total int           // segments done, of total (0: not known yet)
	state       string        // the job's state; "" for none
	eta         time.Duration // time left; < 0 when not known
	busy        string        // who works on what, e.g. "seg 3@dev/0, seg 4@dev/1"
}

// etaOf is the time left for work of which fraction took took, at the
// same pace: < 0 while nothing is done, 0 once all is.
func etaOf(fraction float64, took time.Duration) time.Duration {
	switch {
	case fraction <= 0:
		return -1
	case fraction >= 1:
		return 0
	}
	return (time.Duration(float64(took)/fraction) - took).Round(time.Second)
}

// percent is the fraction in whole percent, 0..100.
func (p progress) percent() int { return int(100*min(max(p.fraction, 0), 1) + 1e-9) }

// describe is everything but the bar: segments, state, ETA and the
// workers, separated by two spaces.
func (p progress) describe() string {
	parts := []string{fmt.Sprintf("%d/%d segments", p.done, p.total)}
	if p.state != "" {
		parts = append(parts, p.state)
	}
	if p.eta >= 0 {
		parts = append(parts, "ETA "+p.eta.String())
	} else {
		parts = append(parts, "ETA ?")
	}
	if p.busy != "" {
		parts = append(parts, p.busy)
	}
	return strings.Join(parts, "  ")
}

// change is what makes a plain line worth writing: everything but the ETA,
// which moves with the clock alone.
func (p progress) change() string {
	return fmt.Sprintf("%d|%d|%d|%s|%s", p.percent(), p.done, p.total, p.state, p.busy)
}

// line is a plain progress line, without its newline.
func (p progress) line() string { return fmt.Sprintf("%3d%%  %s", p.percent(), p.describe()) }

const (
	barSteps = 1000               // the bar's resolution: per mille
	barWidth = 30                 // columns of the bar itself, fewer on a narrow terminal
	barFixed = len(" 100% ||   ") // columns of a drawing besides the bar and the description
	barMin   = 10                 // columns the bar keeps on a narrow terminal
	every    = time.Second        // plain lines: at most one a second, but for state changes and the last
)

// meter shows progress on a writer. On a terminal it draws one bar
// (github.com/schollz/progressbar), redrawn in place and fitted to the
// terminal's width. Anywhere else (a pipe, a file, a CI log) it writes plain
// lines, each ended by a newline: one per change of the percentage, the
// segments, the state or the workers, at most one per second (a change of
// state, and the last line, are never held back). Safe for concurrent use.
type meter struct {
	mu      sync.Mutex
	w       io.Writer
	bar     *progressbar.ProgressBar // on a terminal; nil otherwise
	cols    int                      // the terminal's width; 0 when not known
	now     func() time.Time
	shown   *progress // plain: the last line written
	at      time.Time // plain: when it was written
	pending *progress // plain: the newest change held back by the rate limit
}

// newMeter is a meter on w, drawing a bar when w is a terminal.
func newMeter(w io.Writer) *meter {
	m := &meter{w: w, now: time.Now}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return m
	}
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
		m.cols = cols
	}
	m.bar = progressbar.NewOptions(barSteps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(barWidth),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetPredictTime(false), // the description has the ETA, from the job's own pace
	)
	return m
}

// show shows p: on a terminal it redraws the bar at once (the last drawing
// is the last state, whether or not the work completed).
func (m *meter) show(p progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bar != nil {
		before := int(100 * m.bar.State().CurrentPercent) // as the bar rounds it
		m.bar.Describe(m.fit(p.describe()))
		_ = m.bar.Set64(int64(min(max(p.fraction, 0), 1) * barSteps)) // draws when the percentage moves
		if int(100*m.bar.State().CurrentPercent) == before {
			_ = m.bar.RenderBlank() // draws the new description
		}
		return
	}
	switch {
	case m.shown != nil && p.change() == m.shown.change():
		m.pending = nil // back to what the last line says: nothing to tell
	case m.shown == nil || p.state != m.shown.state || m.now().Sub(m.at) >= every:
		m.write(p)
	default:
		m.pending = &p // written by the next show after the second, or by close
	}
}

// close ends the meter: the bar's line is ended; a change held back is
// written.
func (m *meter) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bar != nil {
		_ = m.bar.Exit()
		fmt.Fprintln(m.w)
		return
	}
	if m.pending != nil {
		m.write(*m.pending)
	}
}

func (m *meter) write(p progress) {
	fmt.Fprintln(m.w, p.line())
	m.shown, m.at, m.pending = &p, m.now(), nil
}

// fit cuts the description to what the terminal leaves beside the bar, so
// that the line never wraps (a wrapped line cannot be redrawn in place).
func (m *meter) fit(desc string) string {
	if m.cols == 0 {
		return desc
	}
	room := m.cols - barFixed - barMin - 1 // the cursor's column too
	r := []rune(desc)
	if len(r) <= room {
		return desc
	}
	if room < 1 {
		return ""
	}
	return string(r[:room-1]) + "…"
}
