// Command spool-bundle-player downloads the dashboard's video player
// (hls.js) from the npm registry at build time, checks it against its
// pinned integrity hash, and writes it where the gateway embeds it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spoolvideo/spool/services/gateway/player"
)

func main() {
	fs := flag.NewFlagSet("spool-bundle-player", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: spool-bundle-player -version V -integrity sha512-... -out DIR\n\n"+
			"Downloads hls.js@V from the npm registry, checks its integrity, and writes dist/hls.min.js\n"+
			"and its LICENSE into DIR (the gateway embeds them at build time).")
		fs.PrintDefaults()
	}
	version := fs.String("version", "", "hls.js version (exact)")
	integrity := fs.String("integrity", "", "the tarball's integrity, sha512-<base64>, as in package-lock.json")
	out := fs.String("out", "", "directory to write the files into")
	registry := fs.String("registry", player.Registry, "npm registry URL")
	_ = fs.Parse(os.Args[1:])
	if *version == "" || *integrity == "" || *out == "" {
		fs.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := player.Package{Name: "hls.js", Version: *version, Integrity: *integrity}
	if err := player.Fetch(ctx, http.DefaultClient, *registry, p, []string{"dist/hls.min.js", "LICENSE"}, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("bundled hls.js %s into %s\n", *version, *out)
}
