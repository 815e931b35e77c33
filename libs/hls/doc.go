// Package hls writes and reads the HLS media playlists (RFC 8216) of
// spool's live previews, and checks a playlist's successive versions
// against the rules a player relies on while it polls one that grows.
package hls
