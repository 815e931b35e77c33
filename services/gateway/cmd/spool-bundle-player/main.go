// Command spool-bundle-player downloads the dashboard's video player
// (hls.js, pinned in services/gateway/player) from the npm registry at
// build time, checks it against its integrity hash, and writes it where the
// gateway embeds it.
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
		fmt.Fprintf(fs.Output(), "usage: spool-bundle-player [-out DIR] [-registry URL]\n\n"+
			"Downloads hls.js@%s from the npm registry, checks its integrity, and writes dist/hls.min.js\n"+
			"and its LICENSE into DIR (the gateway embeds them at build time).\n\n", player.HLSJS.Version)
		fs.PrintDefaults()
	}
	out := fs.String("out", "services/gateway/gateway/web/vendor", "directory to write the files into")
	registry := fs.String("registry", player.Registry, "npm registry URL")
	_ = fs.Parse(os.Args[1:])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := player.Fetch(ctx, http.DefaultClient, *registry, player.HLSJS, player.HLSJSFiles, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("bundled hls.js %s into %s\n", player.HLSJS.Version, *out)
}
