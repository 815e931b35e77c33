package infer_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

// TestSourcesHashIsCurrent: c_sources.h must carry the hash of the C
// sources, or the Go build cache would keep a stale library.
func TestSourcesHashIsCurrent(t *testing.T) {
	var files []string
	for _, pat := range []string{"include/*.h", "src/*.c", "src/*.h", "backends/ref/*.[ch]", "backends/sim/*.[ch]"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	hdr, err := os.ReadFile("c_sources.h")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`SPOOL_INFER_SOURCES_SHA256 "([0-9a-f]{64})"`).FindSubmatch(hdr)
	if m == nil || string(m[1]) != hex.EncodeToString(h.Sum(nil)) {
		t.Fatal("c_sources.h is stale: run \"make -C libs/infer sources-hash\" and commit it")
	}
}
