package player

// HLSJS is the pinned hls.js, the dashboard's player: the version and the
// registry's integrity of its tarball (as package-lock.json records it).
// `make build`, `make deps` and the gateway's image bundle this one.
var HLSJS = Package{
	Name:      "hls.js",
	Version:   "1.7.4",
	Integrity: "sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg==",
}

// HLSJSFiles are the files of the package the gateway embeds.
var HLSJSFiles = []string{"dist/hls.min.js", "LICENSE"}
