// Package bench records benchmark figures: it merges each benchmark's
// object into bench/results.json (with the machine it ran on) and prints a
// table, so that runs can be compared.
package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where figures were taken.
type Machine struct {
	CPUs int    `json:"cpus"`
	Go   string `json:"go"`
	At   string `json:"at"`
}

// ThisMachine describes the running machine now.
func ThisMachine() Machine {
	return Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), At: time.Now().UTC().Format(time.RFC3339)}
}

// Merge writes figures under key into the results file at path, keeping the
// other benchmarks' objects and refreshing "machine".
func Merge(path, key string, figures any) error {
	doc := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("bench: read %s: %w", path, err)
	default:
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("bench: %s is not a results object: %w", path, err)
		}
	}
	for k, v := range map[string]any{"machine": ThisMachine(), key: figures} {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("bench: encode %s: %w", k, err)
		}
		doc[k] = raw
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Row is one line of a table: a figure, its value, its unit and the target
// it is held to ("" for none).
type Row struct {
	Figure, Value, Unit, Target string
}

// Print writes rows as an aligned table under a title.
func Print(w io.Writer, title string, rows []Row) {
	fmt.Fprintf(w, "\n%s\n%s\n", title, strings.Repeat("-", len(title)))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tunit\ttarget")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Figure, r.Value, r.Unit, r.Target)
	}
	_ = tw.Flush()
}

// Fig is a row for value v printed with prec decimals.
func Fig(figure string, v float64, prec int, unit, target string) Row {
	return Row{Figure: figure, Value: strconv.FormatFloat(v, 'f', prec, 64), Unit: unit, Target: target}
}

// Median is the middle of xs (the upper one of an even count), 0 for none;
// xs is left as it was.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
