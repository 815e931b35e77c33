package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
)

// MuxInit is the init segment of a video with sound: videoInit (ftyp +
// moov of one video track, as Retime and Fragments give it) with the AAC
// track t added as a second track. Every box of videoInit is kept byte for
// byte but moov, mvhd (its next_track_ID) and mvex (a trex for the new
// track); the video's trak is copied as it is, since mp4ff does not write
// back every codec configuration it reads. The audio trak (mp4a with t's
// AudioSpecificConfig, timescale t.SampleRate) takes the next free track
// ID (AudioTrackID finds it again) and an edit list that skips t.Priming,
// so that its first presented sample is at 0 like the video's first frame.
func MuxInit(videoInit []byte, t AACTrack) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("media: mux init: %w", err)
	}
	top, err := boxesOf(videoInit)
	if err != nil {
		return nil, fmt.Errorf("media: mux init: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(videoInit) + 1024)
	moovs := 0
	for _, b := range top {
		if b.typ != "moov" {
			out.Write(b.data)
			continue
		}
		if moovs++; moovs > 1 {
			return nil, fmt.Errorf("media: mux init: %w (two moov boxes)", ErrNotFragmented)
		}
		moov, err := muxMoov(b.body(), t)
		if err != nil {
			return nil, fmt.Errorf("media: mux init: %w", err)
		}
		out.Write(moov)
	}
	if moovs == 0 {
		return nil, fmt.Errorf("media: mux init: %w (no moov box)", ErrNotFragmented)
	}
	return out.Bytes(), nil
}

// muxMoov is the moov box whose children are body's with the audio track
// added after the last trak and in mvex.
func muxMoov(body []byte, t AACTrack) ([]byte, error) {
	kids, err := boxesOf(body)
	if err != nil {
		return nil, err
	}
	var mvhd, mvex, lastTrak = -1, -1, -1
	maxID := uint32(0)
	for i, k := range kids {
		switch k.typ {
		case "mvhd":
			mvhd = i
		case "mvex":
			mvex = i
		case "trak":
			lastTrak = i
			id, _, err := trakInfo(k.body())
			if err != nil {
				return nil, err
			}
			maxID = max(maxID, id)
		}
	}
	if mvhd < 0 || lastTrak < 0 || mvex < 0 {
		return nil, fmt.Errorf("%w (want mvhd, trak and mvex in moov)", ErrNotFragmented)
	}
	m := kids[mvhd].data
	if len(m) != 108 && len(m) != 120 { // version 0 or 1, next_track_ID last
		return nil, fmt.Errorf("%w (an mvhd of %d bytes)", ErrNotFragmented, len(m))
	}
	next := binary.BigEndian.Uint32(m[len(m)-4:])
	id := maxID + 1
	if next > id && next != 0xFFFFFFFF {
		id = next
	}
	if id == 0xFFFFFFFF {
		return nil, fmt.Errorf("media: no free track ID after %d", maxID)
	}
	trak, err := encodeBox(audioTrak(id, t))
	if err != nil {
		return nil, err
	}
	trex, err := encodeBox(mp4.CreateTrex(id))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for i, k := range kids {
		switch i {
		case mvhd:
			h := bytes.Clone(k.data)
			binary.BigEndian.PutUint32(h[len(h)-4:], id+1)
			b.Write(h)
		case mvex:
			b.Write(box("mvex", k.body(), trex))
		default:
			b.Write(k.data)
		}
		if i == lastTrak {
			b.Write(trak)
			b.Write(gaplessTag(t))
		}
	}
	return box("moov", b.Bytes()), nil
}

// audioTrak is the trak of track id carrying t: tkhd, an edit list that
// starts the presentation t.Priming samples into the media, and mdia with
// an mp4a sample entry holding t.Config in its esds.
func audioTrak(id uint32, t AACTrack) *mp4.TrakBox {
	trak := mp4.CreateEmptyTrak(id, uint32(t.SampleRate), "audio", "und")
	trak.Mdia.Hdlr.Name = "SoundHandler"
	trak.Mdia.Minf.Stbl.Stsd.AddChild(mp4.CreateAudioSampleEntryBox("mp4a", uint16(t.Channels), 16, uint16(t.SampleRate),
		mp4.CreateEsdsBox(bytes.Clone(t.Config))))
	// One entry: the whole media (duration 0: not known in a fragmented
	// file) from sample Priming on.
	edts := &mp4.EdtsBox{}
	elst := &mp4.ElstBox{Entries: []mp4.ElstEntry{{MediaTime: int64(t.Priming), MediaRateInteger: 1}}}
	edts.Elst = append(edts.Elst, elst)
	edts.AddChild(elst)
	trak.Edts = edts
	trak.Children = append([]mp4.Box{trak.Children[0], edts}, trak.Children[1:]...) // tkhd, edts, mdia
	return trak
}

// gaplessTag is a moov-level udta holding iTunes' gapless tag, iTunSMPB,
// which says the same as the audio trak's edit list: decode from sample
// t.Priming on. Some decoders read one, some the other: ffmpeg (5.1 at
// least) ignores an edit list in a fragmented file but reads the tag as
// the encoder delay of the last track before it (this one). Its end padding
// is 0 and its length every packet's, since which packets a file carries
// is decided piece by piece.
func gaplessTag(t AACTrack) []byte {
	full := func(typ string, parts ...[]byte) []byte { return box(typ, append([][]byte{{0, 0, 0, 0}}, parts...)...) }
	smpb := fmt.Sprintf(" 00000000 %08X 00000000 %016X", t.Priming, int64(t.Packets)*AACFrameSamples-int64(t.Priming))
	smpb += strings.Repeat(" 00000000", 8)
	hdlr := full("hdlr", []byte{0, 0, 0, 0}, []byte("mdirappl"), make([]byte, 9)) // pre_defined, handler, reserved, empty name
	tag := box("----", full("mean", []byte("com.apple.iTunes")), full("name", []byte("iTunSMPB")),
		box("data", []byte{0, 0, 0, 1, 0, 0, 0, 0}, []byte(smpb))) // UTF-8, no locale
	return box("udta", full("meta", hdlr, box("ilst", tag)))
}

// AudioTrackID is the ID of the first audio (soun) track of an init
// segment, as MuxInit made it.
func AudioTrackID(init []byte) (uint32, error) {
	top, err := boxesOf(init)
	if err != nil {
		return 0, fmt.Errorf("media: audio track: %w", err)
	}
	for _, b := range top {
		if b.typ != "moov" {
			continue
		}
		kids, err := boxesOf(b.body())
		if err != nil {
			return 0, fmt.Errorf("media: audio track: %w", err)
		}
		for _, k := range kids {
			if k.typ != "trak" {
				continue
			}
			id, handler, err := trakInfo(k.body())
			if err != nil {
				return 0, fmt.Errorf("media: audio track: %w", err)
			}
			if handler == "soun" {
				return id, nil
			}
		}
	}
	return 0, errors.New("media: audio track: the init segment has none")
}

// AudioFragment is one moof+mdat of the audio track trackID of an init
// from MuxInit, sequence number seq: packets, which are t's packets from
// number first on, each a sample of AACFrameSamples ticks of t.SampleRate,
// the first decoded at first·AACFrameSamples.
func AudioFragment(t AACTrack, trackID, seq uint32, first int, packets [][]byte) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("media: audio fragment: %w", err)
	}
	if len(packets) == 0 || first < 0 || first+len(packets) > t.Packets {
		return nil, fmt.Errorf("media: audio fragment: packets [%d, %d) of a track of %d: want at least one, all in the track",
			first, first+len(packets), t.Packets)
	}
	f, err := mp4.CreateFragment(seq, trackID)
	if err != nil {
		return nil, fmt.Errorf("media: audio fragment: %w", err)
	}
	size := 0
	for i, p := range packets {
		f.AddFullSample(mp4.FullSample{Sample: mp4.NewSample(mp4.SyncSampleFlags, AACFrameSamples, uint32(len(p)), 0),
			DecodeTime: uint64(first+i) * AACFrameSamples, Data: p})
		size += len(p)
	}
	f.EncOptimize = mp4.OptimizeTrun // one duration and one flags value for all samples, in tfhd
	var b bytes.Buffer
	b.Grow(size + 64 + 4*len(packets))
	if err := f.Encode(&b); err != nil {
		return nil, fmt.Errorf("media: audio fragment: %w", err)
	}
	return b.Bytes(), nil
}

// PieceAudio is the audio fragment that a piece of a video with sound
// carries after its video fragments: t's packets PacketsFor(a, b, fps) of
// the piece's frames [a, b), from frame 0 instead of a for the first piece
// (so that the frames before it, an extension's kept input, have their
// sound too), read from index (EncodeAACIndex's object) and packets (the
// packets back to back) by ReadAACPackets. It is nil when the piece
// carries no packet. The stitcher and the oracle both cut the audio here.
func PieceAudio(t AACTrack, trackID, seq uint32, first bool, a, b int64, fps int, index, packets io.ReaderAt) ([]byte, error) {
	if first {
		a = 0
	}
	k0, k1 := t.PacketsFor(a, b, fps)
	if k1 <= k0 {
		return nil, nil
	}
	ps, err := ReadAACPackets(index, packets, k0, k1)
	if err != nil {
		return nil, err
	}
	return AudioFragment(t, trackID, seq, k0, ps)
}

// ReadAACPackets reads packets [k0, k1) of a track and nothing else:
// entries k0..k1 of its index (8·(k1−k0+1) bytes at 8·k0), then the bytes
// between the first and the last of those offsets.
func ReadAACPackets(index, packets io.ReaderAt, k0, k1 int) ([][]byte, error) {
	if k0 < 0 || k1 < k0 {
		return nil, fmt.Errorf("media: aac packets [%d, %d)", k0, k1)
	}
	raw := make([]byte, 8*(k1-k0+1))
	if _, err := index.ReadAt(raw, 8*int64(k0)); err != nil {
		return nil, fmt.Errorf("media: aac index entries %d..%d: %w", k0, k1, err)
	}
	off, err := DecodeAACIndex(raw)
	if err != nil {
		return nil, err
	}
	if off[len(off)-1]-off[0] > 1<<31 {
		return nil, fmt.Errorf("media: aac packets [%d, %d) span %d bytes", k0, k1, off[len(off)-1]-off[0])
	}
	data := make([]byte, off[len(off)-1]-off[0])
	if _, err := packets.ReadAt(data, int64(off[0])); err != nil {
		return nil, fmt.Errorf("media: aac packets [%d, %d): %w", k0, k1, err)
	}
	out := make([][]byte, k1-k0)
	for i := range out {
		out[i] = data[off[i]-off[0] : off[i+1]-off[0] : off[i+1]-off[0]]
	}
	return out, nil
}

// check refuses a track that MuxInit and AudioFragment cannot describe.
func (t AACTrack) check() error {
	switch {
	case t.SampleRate < 1 || t.SampleRate > 0xFFFF:
		return fmt.Errorf("aac track at %d Hz: want 1..65535", t.SampleRate)
	case t.Channels < 1 || t.Channels > 8:
		return fmt.Errorf("aac track of %d channels: want 1..8", t.Channels)
	case len(t.Config) < 2:
		return fmt.Errorf("aac track with an AudioSpecificConfig of %d bytes: want at least 2", len(t.Config))
	case t.Priming < 0 || t.Packets < 0:
		return fmt.Errorf("aac track of %d packets priming %d samples: want both ≥ 0", t.Packets, t.Priming)
	}
	return nil
}

// trakInfo is a trak's track ID (tkhd) and handler type (mdia/hdlr).
func trakInfo(trak []byte) (id uint32, handler string, err error) {
	kids, err := boxesOf(trak)
	if err != nil {
		return 0, "", err
	}
	for _, k := range kids {
		switch k.typ {
		case "tkhd":
			b := k.body()
			at := 12 // version and flags, creation and modification times
			if len(b) > 0 && b[0] == 1 {
				at = 20
			}
			if len(b) < at+4 {
				return 0, "", fmt.Errorf("%w (a tkhd of %d bytes)", ErrNotFragmented, len(k.data))
			}
			id = binary.BigEndian.Uint32(b[at:])
		case "mdia":
			mdia, err := boxesOf(k.body())
			if err != nil {
				return 0, "", err
			}
			for _, m := range mdia {
				if b := m.body(); m.typ == "hdlr" && len(b) >= 12 {
					handler = string(b[8:12]) // after version, flags and pre_defined
				}
			}
		}
	}
	if id == 0 {
		return 0, "", fmt.Errorf("%w (a trak without a track ID)", ErrNotFragmented)
	}
	return id, handler, nil
}

// rawBox is one box as it lies in its parent: data is the whole box, hdr
// its header's length.
type rawBox struct {
	typ  string
	data []byte
	hdr  int
}

func (b rawBox) body() []byte { return b.data[b.hdr:] }

// boxesOf splits data into the boxes that fill it, exactly.
func boxesOf(data []byte) ([]rawBox, error) {
	var out []rawBox
	for off := 0; off < len(data); {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("%w (%d stray bytes at %d)", ErrNotFragmented, len(data)-off, off)
		}
		size, hdr := uint64(binary.BigEndian.Uint32(data[off:])), 8
		typ := string(data[off+4 : off+8])
		switch size {
		case 0:
			size = uint64(len(data) - off)
		case 1:
			if len(data)-off < 16 {
				return nil, fmt.Errorf("%w (truncated large box at %d)", ErrNotFragmented, off)
			}
			size, hdr = binary.BigEndian.Uint64(data[off+8:]), 16
		}
		if size < uint64(hdr) || size > uint64(len(data)-off) {
			return nil, fmt.Errorf("%w (box %q of %d bytes at %d overruns its parent)", ErrNotFragmented, typ, size, off)
		}
		out = append(out, rawBox{typ: typ, data: data[off : off+int(size)], hdr: hdr})
		off += int(size)
	}
	return out, nil
}

// box is a box of type typ holding parts back to back.
func box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 8, n)
	binary.BigEndian.PutUint32(out, uint32(n))
	copy(out[4:], typ)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func encodeBox(b mp4.Box) ([]byte, error) {
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		return nil, fmt.Errorf("media: encode %s: %w", b.Type(), err)
	}
	return buf.Bytes(), nil
}
