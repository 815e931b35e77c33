// Package player bundles the dashboard's video player, hls.js, into the
// gateway at build time. It downloads the package's tarball from the npm
// registry, checks it against the pinned Subresource Integrity hash (as
// package-lock.json does), and writes the minified build and its licence
// beside the dashboard's files, where go:embed picks them up. Node and npm
// are not needed, so a machine with only Go builds the dashboard.
package player

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Package pins one npm package: its name, exact version and the SRI hash of
// its tarball ("sha512-<base64>", the registry's dist.integrity).
type Package struct {
	Name, Version, Integrity string
}

// Registry is the npm registry the tarball comes from.
const Registry = "https://registry.npmjs.org"

// maxTarball bounds the download (hls.js is about 3 MB packed).
const maxTarball = 64 << 20

// TarballURL is where the registry serves the package's tarball.
func (p Package) TarballURL(registry string) string {
	base := p.Name
	if i := strings.LastIndex(base, "/"); i >= 0 { // a scoped package: @scope/name
		base = base[i+1:]
	}
	return fmt.Sprintf("%s/%s/-/%s-%s.tgz", strings.TrimRight(registry, "/"), p.Name, base, p.Version)
}

// Fetch downloads the tarball, checks its integrity, and writes the files
// named in files (paths inside the package, such as "dist/hls.min.js") into
// dir under their base names. Nothing is written unless every check passes.
func Fetch(ctx context.Context, client *http.Client, registry string, p Package, files []string, dir string) error {
	want, err := sriDigest(p.Integrity)
	if err != nil {
		return fmt.Errorf("player: %s@%s: %w", p.Name, p.Version, err)
	}
	url := p.TarballURL(registry)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("player: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("player: download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("player: download %s: %s", url, resp.Status)
	}
	tgz, err := io.ReadAll(io.LimitReader(resp.Body, maxTarball+1))
	if err != nil {
		return fmt.Errorf("player: download %s: %w", url, err)
	}
	if len(tgz) > maxTarball {
		return fmt.Errorf("player: %s is over %d bytes", url, maxTarball)
	}
	if got := sha512.Sum512(tgz); !bytes.Equal(got[:], want) {
		return fmt.Errorf("player: %s: integrity mismatch: got sha512-%s, want %s",
			url, base64.StdEncoding.EncodeToString(got[:]), p.Integrity)
	}
	found, err := extract(tgz, files)
	if err != nil {
		return fmt.Errorf("player: %s: %w", url, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("player: %w", err)
	}
	for _, f := range files {
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(dst+".tmp", found[f], 0o644); err != nil {
			return fmt.Errorf("player: %w", err)
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return fmt.Errorf("player: %w", err)
		}
	}
	return nil
}

// sriDigest decodes a "sha512-<base64>" integrity string.
func sriDigest(integrity string) ([]byte, error) {
	b64, ok := strings.CutPrefix(integrity, "sha512-")
	if !ok {
		return nil, fmt.Errorf("integrity %q: want sha512-<base64>", integrity)
	}
	d, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(d) != sha512.Size {
		return nil, fmt.Errorf("integrity %q: not a base64 SHA-512 digest", integrity)
	}
	return d, nil
}

// extract reads the named files out of an npm tarball, whose entries sit
// under "package/".
func extract(tgz []byte, files []string) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("not a gzip tarball: %w", err)
	}
	wanted := map[string]bool{}
	for _, f := range files {
		wanted[f] = true
	}
	found := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the tarball: %w", err)
		}
		name, ok := strings.CutPrefix(h.Name, "package/")
		if !ok || !wanted[name] || h.Typeflag != tar.TypeReg {
			continue
		}
		if found[name], err = io.ReadAll(io.LimitReader(tr, maxTarball)); err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
	}
	for _, f := range files {
		if _, ok := found[f]; !ok {
			return nil, fmt.Errorf("the package has no file %s", f)
		}
	}
	return found, nil
}
