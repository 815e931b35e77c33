package infer

import (
	"fmt"
	"sort"
	"strings"
)

// MaxThreads is the most CPU threads an engine may be given.
const MaxThreads = 256

// Option configures Open. Options validate their arguments: a bad one makes
// Open fail with ErrInvalidRequest before anything is loaded.
type Option func(*options) error

type options struct {
	model, weights, pluginDir string
	params                    map[string]string
	device, threads           int
}

// paramString is the params map as the C library reads it, "k=v;k=v" with
// keys sorted; "" when there are none.
func (o *options) paramString() string {
	if len(o.params) == 0 {
		return ""
	}
	keys := make([]string, 0, len(o.params))
	for k := range o.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(o.params[k])
	}
	return b.String()
}

func optErr(format string, args ...any) error {
	return fmt.Errorf("infer: %w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// WithModel names the model to load; the backend's default otherwise.
func WithModel(m string) Option {
	return func(o *options) error {
		if strings.ContainsRune(m, 0) {
			return optErr("model %q contains a NUL byte", m)
		}
		o.model = m
		return nil
	}
}

// WithWeightsDir sets the directory of the model's weights.
func WithWeightsDir(d string) Option {
	return func(o *options) error {
		if strings.ContainsRune(d, 0) {
			return optErr("weights dir %q contains a NUL byte", d)
		}
		o.weights = d
		return nil
	}
}

// WithDevice picks a GPU ordinal; -1 (the default) is the CPU.
func WithDevice(n int) Option {
	return func(o *options) error {
		if n < -1 || n > 1<<20 {
			return optErr("device %d: want -1 (CPU) or a GPU ordinal", n)
		}
		o.device = n
		return nil
	}
}

// WithThreads lets a CPU backend use n threads, the calling one included
// (1..MaxThreads; the default is 1). The ref backend gives the same bytes for
// any n; backends that do not use threads ignore it.
func WithThreads(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxThreads {
			return optErr("threads %d: want 1..%d", n, MaxThreads)
		}
		o.threads = n
		return nil
	}
}

// WithPluginDir sets where plugins (libspool_infer_<backend>.so) are looked
// for first; then $SPOOL_INFER_PLUGIN_DIR, then the program's directory.
func WithPluginDir(d string) Option {
	return func(o *options) error {
		if strings.ContainsRune(d, 0) {
			return optErr("plugin dir %q contains a NUL byte", d)
		}
		o.pluginDir = d
		return nil
	}
}

// WithParams passes backend parameters as "key=value;key=value", e.g.
// "step_ms=5" for sim or "module=spool_numpy_ref;path=/opt/models" for
// python. Empty items are skipped; an item without '=', an empty key or a key
// given twice is an error. It adds to earlier WithParams and WithParamMap.
func WithParams(p string) Option {
	return func(o *options) error {
		if strings.ContainsRune(p, 0) {
			return optErr("params contain a NUL byte")
		}
		seen := map[string]bool{}
		for _, item := range strings.Split(p, ";") {
			if item == "" {
				continue
			}
			k, v, ok := strings.Cut(item, "=")
			if !ok || k == "" {
				return optErr("params item %q: want key=value", item)
			}
			if seen[k] {
				return optErr("params key %q given twice", k)
			}
			seen[k] = true
			if err := setParam(o, k, v); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithParamMap passes backend parameters as a map; see WithParams. Keys are
// non-empty without '=', ';' or NUL; values have no ';' or NUL.
func WithParamMap(m map[string]string) Option {
	return func(o *options) error {
		for k, v := range m {
			if err := setParam(o, k, v); err != nil {
				return err
			}
		}
		return nil
	}
}

func setParam(o *options, k, v string) error {
	if k == "" || strings.ContainsAny(k, "=;\x00") {
		return optErr("param key %q: want a non-empty key without '=', ';' or NUL", k)
	}
	if strings.ContainsAny(v, ";\x00") {
		return optErr("param %s value %q: ';' and NUL are not allowed", k, v)
	}
	if o.params == nil {
		o.params = map[string]string{}
	}
	o.params[k] = v
	return nil
}
