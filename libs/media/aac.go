package media

import (
	"encoding/binary"
	"fmt"
)

// AACFrameSamples is how many samples, per channel, one AAC-LC access
// unit (a packet) decodes to.
const AACFrameSamples = 1024

// AACTrack describes the one AAC encode of a job's audio that its final
// video and preview carry by stream copy. Its packets are stored back to
// back in one object and located through an index object of Packets+1
// big-endian uint64 byte offsets (EncodeAACIndex): packet k is bytes
// [offset k, offset k+1).
type AACTrack struct {
	// SampleRate and Channels of the encode (48000 Hz; 1 or 2 channels).
	SampleRate int `json:"sample_rate"`
	Channels   int `json:"channels"`
	// Config is the AudioSpecificConfig (ISO/IEC 14496-3) the decoder
	// needs, as an MP4's esds carries it.
	Config []byte `json:"config"`
	// Priming is the encoder delay, in samples at SampleRate, that the
	// decoder drops from the start (an edit list in the MP4 says so):
	// packet k's samples are presented from (k·1024 − Priming)/SampleRate s.
	Priming int `json:"priming"`
	// Packets is how many access units there are, AACFrameSamples each.
	Packets int `json:"packets"`
	// Samples is the audio's length in samples at SampleRate, priming and
	// the last packet's padding excluded.
	Samples int64 `json:"samples"`
}

// PacketsFor is the range [k0, k1) of packets that a piece of the video
// holding frames [a, b) at fps carries: those whose middle is presented in
// [a/fps, b/fps). Consecutive pieces therefore carry consecutive packets,
// none lost or doubled, and a packet never strays more than half a packet
// (10.7 ms at 48 kHz) from its frames. Packets presented wholly before 0
// (priming) go with the piece at frame 0, those whose middle lies after
// the video's end with none. The range may be empty.
func (t AACTrack) PacketsFor(a, b int64, fps int) (k0, k1 int) {
	return t.firstPacketAt(a, fps), t.firstPacketAt(b, fps)
}

// firstPacketAt is the first packet whose middle is presented at or after
// frame f's start: the least k ≥ 0 with (k·1024 − Priming + 512)·fps ≥
// f·SampleRate, at most Packets (0 for f ≤ 0).
func (t AACTrack) firstPacketAt(f int64, fps int) int {
	if f <= 0 || t.SampleRate < 1 || fps < 1 {
		return 0
	}
	// k·1024·fps ≥ f·rate + (Priming − 512)·fps
	need := f*int64(t.SampleRate) + int64(t.Priming-AACFrameSamples/2)*int64(fps)
	den := int64(AACFrameSamples) * int64(fps)
	k := need / den
	if need > 0 && need%den != 0 {
		k++
	}
	if k < 0 {
		k = 0
	}
	return int(min(k, int64(t.Packets)))
}

// EncodeAACIndex is the index object of packets whose sizes are given:
// len(sizes)+1 big-endian uint64 offsets, from 0.
func EncodeAACIndex(sizes []int) []byte {
	out := make([]byte, 8*(len(sizes)+1))
	off := uint64(0)
	for i, s := range sizes {
		binary.BigEndian.PutUint64(out[8*i:], off)
		off += uint64(s)
	}
	binary.BigEndian.PutUint64(out[8*len(sizes):], off)
	return out
}

// DecodeAACIndex reads offsets from an index object or a slice of one
// (entries k0..k1 inclusive are bytes [8·k0, 8·(k1+1))): they must not
// decrease.
func DecodeAACIndex(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("media: aac index of %d bytes, not a multiple of 8", len(b))
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
		if i > 0 && out[i] < out[i-1] {
			return nil, fmt.Errorf("media: aac index: offset %d at %d follows %d", out[i], i, out[i-1])
		}
	}
	return out, nil
}

// AudioManifest is what intake stored of a job's audio, as JSON in the
// object AudioManifestName, written after the others of the same folder
// (its presence says they are all there): the PCM the engines read and
// the AAC the outputs carry.
type AudioManifest struct {
	// Rate and Samples of the PCM (PCMName): mono float32 little-endian.
	Rate    int   `json:"rate"`
	Samples int64 `json:"samples"`
	// Track describes the AAC (AACName, indexed by AACIndexName).
	Track AACTrack `json:"track"`
}

// The objects of an audio intake, side by side in one folder of the
// upload's derived objects (blob.UploadDerived).
const (
	AudioManifestName = "audio.json"
	PCMName           = "pcm.f32"  // mono float32 little-endian samples at AudioManifest.Rate
	AACName           = "aac.raw"  // the AAC packets back to back
	AACIndexName      = "aac.idx"  // EncodeAACIndex of their sizes
	PeaksName         = "peaks.u8" // one byte per 10 ms of the PCM: its peak |sample| × 255
)
