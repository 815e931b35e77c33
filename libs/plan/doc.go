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
// retried segment regenerates the same frames. A segment is generated with
// one prompt, so a prompt can change only where a segment's new frames
// begin: each cue of the timeline lands on the segment boundary nearest to
// the frame it asks for (the later of two at the same distance), at most
// ⌈(W−O)/2⌉ frames away, and a segment's prompt is that of the cue landed at
// or before its first new frame. The first window has no boundary inside its
// W frames, so a cue that would land more than ⌈(W−O)/2⌉ frames from its
// request there, two cues landing on one boundary, or a cue landing at or
// past the end of a bounded video is refused (*CueError): every prompt asked
// for is shown. Plan.Landings reports where each cue lands.
package plan
