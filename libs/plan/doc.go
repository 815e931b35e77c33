// Package plan is spool's segment planner: pure arithmetic, no I/O.
//
// It follows SkyReels-V2 diffusion forcing. A window of W frames is generated
// at once; every window after the first re-uses the last O frames of the one
// before it as clean conditioning (chain mode) or overlaps it by O frames for
// a crossfade (independent mode). Each window therefore adds W−O new frames.
//
// For a video of N frames, segment 0 generates frames [0, min(W, N)); segment
// k ≥ 1 generates O overlap frames followed by up to W−O new ones. The new
// frames of all segments tile [0, N) exactly. Models whose latent frames are
// 4 video frames apart need frame counts ≡ 1 (mod 4); with Align set, W is
// rounded down and O up to that form, and a short last segment generates the
// next aligned count and trims the surplus from its end (Segment.Trim).
//
// A segment's seed is a pure function of the job seed and the index, so a
// retried segment regenerates the same frames, and its prompt is the one the
// timeline has in force at the segment's first new frame.
package plan
