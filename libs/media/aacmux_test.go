package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/spoolvideo/spool/libs/media"
)

// aacTrack encodes samples of a 440 Hz sine at 48 kHz with ffmpeg's AAC
// encoder into an MP4 (the reference, at ref: its edit list skips the
// encoder's priming and trims the last packet's padding) and reads back
// the track, its packets and their index.
func aacTrack(t *testing.T, dir string, samples int64, channels int) (tr media.AACTrack, packets [][]byte, index []byte, ref string) {
	t.Helper()
	ref = filepath.Join(dir, fmt.Sprintf("ref-%d-%d.mp4", samples, channels))
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:r=48000",
		"-af", "atrim=end_sample="+strconv.FormatInt(samples, 10), "-ac", strconv.Itoa(channels), "-c:a", "aac", "-b:a", "96k",
		ref).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make test-deps installs it): %v\n%s", err, b)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	trak := f.Moov.Trak
	stbl := trak.Mdia.Minf.Stbl
	mp4a, ok := stbl.Stsd.Children[0].(*mp4.AudioSampleEntryBox)
	if !ok || mp4a.Esds == nil || trak.Edts == nil || len(trak.Edts.Elst) != 1 {
		t.Fatalf("no mp4a/esds or edit list in %s", ref)
	}
	tr = media.AACTrack{SampleRate: int(trak.Mdia.Mdhd.Timescale), Channels: channels,
		Config: mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig, Samples: samples,
		Priming: int(trak.Edts.Elst[0].Entries[0].MediaTime), Packets: int(stbl.Stsz.SampleNumber)}
	chunks, err := stbl.Stsc.GetContainingChunks(1, uint32(tr.Packets))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range chunks {
		off := int(stbl.Stco.ChunkOffset[c.ChunkNr-1])
		for nr := c.StartSampleNr; nr < c.StartSampleNr+c.NrSamples && int(nr) <= tr.Packets; nr++ {
			n := int(stbl.Stsz.GetSampleSize(int(nr)))
			packets = append(packets, data[off:off+n])
			sizes = append(sizes, n)
			off += n
		}
	}
	if tr.SampleRate != 48000 || tr.Priming != 1024 || len(packets) != tr.Packets || int64(tr.Packets)*1024 < samples+int64(tr.Priming) {
		t.Fatalf("ffmpeg's aac: %+v, %d packets read", tr, len(packets))
	}
	return tr, packets, media.EncodeAACIndex(sizes), ref
}

// pcm decodes the first audio stream of a file to interleaved float32.
func pcm(t *testing.T, file string) []float32 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", file, "-map", "0:a:0",
		"-f", "f32le", "-c:a", "pcm_f32le", "pipe:1").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode of %s: %v", file, err)
	}
	s := make([]float32, len(out)/4)
	for i := range s {
		s[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return s
}

type stream struct {
	CodecType string `json:"codec_type"`
	StartTime string `json:"start_time"`
	Frames    string `json:"nb_read_frames"`
}

// streams is ffprobe's view of file's streams, frames counted.
func streams(t *testing.T, file string) []stream {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,start_time,nb_read_frames", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var v struct{ Streams []stream }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Streams
}

// audioEnd is where the last audio packet's presentation ends, in
// seconds, by ffprobe (a fragmented track's stream duration counts the
// skipped priming too).
func audioEnd(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Fatalf("no audio packet in %s", file)
	}
	f := strings.Split(lines[len(lines)-1], ",")
	return seconds(t, f[0]) + seconds(t, f[1])
}

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("ffprobe time %q: %v", s, err)
	}
	return v
}

// TestMuxInitAndPieceAudio: segments encoded apart as workers do, retimed
// and joined with the AAC track muxed in (one audio fragment after each
// piece's video fragments, cut by PieceAudio) give a file of two streams:
// the video decodes to the same frames as without sound, the audio to the
// same samples as the AAC alone, presented from 0 and ending within one
// frame of the video's end.
func TestMuxInitAndPieceAudio(t *testing.T) {
	const fps = 24
	cases := []struct {
		name     string
		codec    media.Codec
		channels int
		cuts     []int64 // piece boundaries, in frames
		samples  int64
	}{
		{"h264 stereo", media.H264(), 2, []int64{0, 20, 45, 60}, 60 * 2000},
		{"lossless mono, audio longer", media.Lossless(), 1, []int64{0, 7, 31}, 31*2000 + 30000},
		{"h264 mono, audio cut mid-frame", media.H264(), 1, []int64{0, 12, 24, 36, 37}, 37*2000 - 700},
		{"h264 stereo, audio over before the last piece", media.H264(), 2, []int64{0, 12, 24, 36}, 20 * 2000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			tr, packets, index, ref := aacTrack(t, dir, c.samples, c.channels)
			last := c.cuts[len(c.cuts)-1]
			all := frames(int(last), 64, 48)
			var silent, sound bytes.Buffer
			var videoInit []byte
			seq := uint32(1)
			trackID := uint32(0)
			carried := 0
			for i := 0; i+1 < len(c.cuts); i++ {
				a, b := c.cuts[i], c.cuts[i+1]
				_, data := encode(t, dir, fmt.Sprintf("s%d.mp4", i), media.EncodeOptions{Width: 64, Height: 48, FPS: fps, Codec: c.codec},
					all[a:b])
				cm, err := media.Retime(data, fps, a, seq)
				if err != nil {
					t.Fatal(err)
				}
				_, frags, err := media.Fragments(append(bytes.Clone(cm.Init), cm.Media...))
				if err != nil {
					t.Fatal(err)
				}
				seq += uint32(len(frags))
				if videoInit == nil {
					videoInit = cm.Init
					muxed, err := media.MuxInit(videoInit, tr)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Contains(muxed, trakOf(t, videoInit)) || !bytes.HasPrefix(muxed, videoInit[:ftypLen(videoInit)]) {
						t.Fatal("the muxed init does not keep the video's ftyp and trak byte for byte")
					}
					if trackID, err = media.AudioTrackID(muxed); err != nil || trackID != 2 {
						t.Fatalf("audio track %d, %v; want 2", trackID, err)
					}
					if _, err := media.AudioTrackID(videoInit); err == nil {
						t.Fatal("a video-only init has an audio track")
					}
					silent.Write(videoInit)
					sound.Write(muxed)
				} else if !bytes.Equal(cm.Init, videoInit) {
					t.Fatal("segments with different inits")
				}
				silent.Write(cm.Media)
				sound.Write(cm.Media)
				af, err := media.PieceAudio(tr, trackID, seq, i == 0, a, b, fps, bytes.NewReader(index), bytes.NewReader(bytes.Join(packets, nil)))
				if err != nil {
					t.Fatal(err)
				}
				k0, k1 := tr.PacketsFor(a, b, fps)
				if i == 0 {
					k0 = 0
				}
				if af == nil != (k1 == k0) {
					t.Fatalf("piece %d: packets [%d, %d), fragment of %d bytes", i, k0, k1, len(af))
				}
				if af != nil {
					seq++
					carried = k1
				}
				sound.Write(af)
			}
			silentPath, soundPath := filepath.Join(dir, "silent.mp4"), filepath.Join(dir, "sound.mp4")
			_ = os.WriteFile(silentPath, silent.Bytes(), 0o644)
			_ = os.WriteFile(soundPath, sound.Bytes(), 0o644)

			want, err := media.FrameMD5(ctx, silentPath, "rgb24")
			if err != nil {
				t.Fatal(err)
			}
			got, err := media.FrameMD5(ctx, soundPath, "rgb24")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != int(last) || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("video: %d frames decoded with sound, %d without, want %d and the same", len(got), len(want), last)
			}
			ss := streams(t, soundPath)
			if len(ss) != 2 || ss[0].CodecType != "video" || ss[1].CodecType != "audio" || ss[0].Frames != strconv.FormatInt(last, 10) {
				t.Fatalf("streams %+v", ss)
			}
			start, video := seconds(t, ss[1].StartTime), float64(last)/fps
			if math.Abs(start) > 0.001 {
				t.Errorf("audio starts at %.4f s, want 0", start)
			}
			end := float64(carried*1024-tr.Priming) / 48000
			if got := audioEnd(t, soundPath); math.Abs(got-end) > 0.001 {
				t.Errorf("audio ends at %.4f s, the packets carried at %.4f s", got, end)
			}
			if want := min(float64(c.samples)/48000, video); math.Abs(end-want) > 1.0/fps {
				t.Errorf("audio ends at %.4f s, the audio or the video (the shorter) at %.4f s: more than a frame apart", end, want)
			}

			ws, gs := pcm(t, ref), pcm(t, soundPath)
			if n := (carried*1024 - tr.Priming) * c.channels; len(gs) != n || len(ws) < n {
				t.Fatalf("%d samples decoded with the video, want %d (the AAC alone gives %d)", len(gs), n, len(ws))
			}
			for i := range gs {
				if math.Float32bits(gs[i]) != math.Float32bits(ws[i]) {
					t.Fatalf("sample %d: %v with the video, %v alone", i, gs[i], ws[i])
				}
			}
		})
	}
}

// TestAudioFragmentBoxes: tfdt, durations, sizes, data offset and
// sequence number of an audio fragment, read back with mp4ff; far along
// (tfdt past 2^32) too.
func TestAudioFragmentBoxes(t *testing.T) {
	tr := media.AACTrack{SampleRate: 48000, Channels: 1, Config: []byte{0x11, 0x88}, Priming: 1024, Packets: 1 << 23}
	for _, first := range []int{0, 5, 1<<23 - 3} {
		packets := [][]byte{[]byte("abc"), []byte("defgh"), []byte("i")}
		b, err := media.AudioFragment(tr, 2, 77, first, packets)
		if err != nil {
			t.Fatal(err)
		}
		f, err := mp4.DecodeFile(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		fr := f.Segments[0].Fragments[0]
		if fr.Moof.Mfhd.SequenceNumber != 77 || fr.Moof.Traf.Tfhd.TrackID != 2 {
			t.Fatalf("seq %d, track %d", fr.Moof.Mfhd.SequenceNumber, fr.Moof.Traf.Tfhd.TrackID)
		}
		ss, err := fr.GetFullSamples(nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range ss {
			if s.DecodeTime != uint64(first+i)*1024 || s.Dur != 1024 || !bytes.Equal(s.Data, packets[i]) {
				t.Fatalf("first %d: sample %d at %d for %d: %q", first, i, s.DecodeTime, s.Dur, s.Data)
			}
		}
	}
	if _, err := media.AudioFragment(tr, 2, 1, 0, nil); err == nil {
		t.Error("an audio fragment of no packet")
	}
	if _, err := media.AudioFragment(tr, 2, 1, 1<<23, [][]byte{{1}}); err == nil {
		t.Error("an audio fragment past the track")
	}
	if _, err := media.MuxInit([]byte("not an mp4"), tr); err == nil {
		t.Error("garbage muxed")
	}
}

// trakOf is the first trak box of an init, as it lies there.
func trakOf(t *testing.T, init []byte) []byte {
	t.Helper()
	at := bytes.Index(init, []byte("trak"))
	if at < 4 {
		t.Fatal("no trak")
	}
	n := binary.BigEndian.Uint32(init[at-4:])
	return init[at-4 : at-4+int(n)]
}

func ftypLen(init []byte) int { return int(binary.BigEndian.Uint32(init)) }
