// Package media runs ffmpeg: it encodes raw RGB frames into fragmented MP4
// with codec parameters that are identical everywhere, probes files, and
// computes per-frame MD5s (framemd5) for tests and the oracle.
//
// Identical parameters, thread count included, make the same frames encode
// to the same bytes on any machine, and every fragment starts with a
// keyframe; that is what lets the stitcher join fragments by stream copy.
package media
