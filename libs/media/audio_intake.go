package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
)

// The rates IntakeAudio's PCM may have, Hz.
const (
	MinAudioRate = 8000
	MaxAudioRate = 192000
)

// AACRate is the sample rate of the AAC encode IntakeAudio makes.
const AACRate = 48000

// AudioIntakeOptions describe what IntakeAudio makes of an audio file.
type AudioIntakeOptions struct {
	// Rate is the PCM's sample rate, the model's, MinAudioRate to
	// MaxAudioRate Hz.
	Rate int
	// PCM receives the audio as mono float32 little-endian samples at
	// Rate, as ffmpeg decodes them (nil: discarded).
	PCM io.Writer
	// AAC receives the AAC access units of the encode back to back, once
	// the encode is done (nil: discarded).
	AAC io.Writer
	// MaxSeconds bounds the audio's length; longer is an ErrIntake error.
	// 0: no bound.
	MaxSeconds float64
}

// AudioIntakeResult is what IntakeAudio made.
type AudioIntakeResult struct {
	// Samples is how many PCM samples were written.
	Samples int64
	// Track describes the AAC encode: AACRate, 1 channel for a mono input
	// and 2 for any other (downmixed).
	Track AACTrack
	// Index is EncodeAACIndex of the AAC packets' sizes.
	Index []byte
	// Peaks is the PCM's loudness envelope, for a waveform: one byte per
	// Rate/100 samples (10 ms; the last bucket may be shorter), the
	// greatest |sample| in it × 255, rounded, clamped to 255.
	Peaks []byte
}

// IntakeAudio decodes the first audio stream of file (an audio file, or
// the sound of a video) once and makes of it, in one ffmpeg process, the
// PCM the engines read and the AAC encode the outputs carry by stream copy.
//
// Sample 0 of both is the stream's first decoded sample, and the decoded
// samples follow each other with no gap: audio that starts after the
// file's other streams is not padded with silence, nor is a gap in its
// timestamps filled.
//
// The PCM is downmixed to mono (swresample's matrix, normalised so that
// it cannot clip) and resampled to o.Rate by soxr; it streams to o.PCM as
// ffmpeg writes it. The AAC is ffmpeg's native aac encoder, AAC-LC at
// AACRate, 128 kb/s stereo or 96 kb/s mono; ffmpeg writes it into an MP4
// in a temporary file, from which the packets are copied to o.AAC and the
// AudioSpecificConfig (esds), priming (edit list) and length (sample
// durations) are read. Both run on one thread with bit-exact flags, so
// the same file gives the same bytes on every run.
func IntakeAudio(ctx context.Context, file string, o AudioIntakeOptions) (AudioIntakeResult, error) {
	if o.Rate < MinAudioRate || o.Rate > MaxAudioRate {
		return AudioIntakeResult{}, fmt.Errorf("media: audio intake: rate %d Hz: want %d to %d", o.Rate, MinAudioRate, MaxAudioRate)
	}
	if o.MaxSeconds < 0 || math.IsNaN(o.MaxSeconds) {
		return AudioIntakeResult{}, fmt.Errorf("media: audio intake: max seconds %g must be ≥ 0", o.MaxSeconds)
	}
	if o.PCM == nil {
		o.PCM = io.Discard
	}
	if o.AAC == nil {
		o.AAC = io.Discard
	}
	in, err := probeAudio(ctx, file)
	if err != nil {
		return AudioIntakeResult{}, err
	}
	if o.MaxSeconds > 0 && in.seconds > o.MaxSeconds {
		return AudioIntakeResult{}, fmt.Errorf("%w: the audio lasts %.3f s: want at most %g s", ErrIntake, in.seconds, o.MaxSeconds)
	}
	bin, err := lookPath("ffmpeg")
	if err != nil {
		return AudioIntakeResult{}, err
	}
	tmp, err := os.CreateTemp("", "spool-aac-*.mp4")
	if err != nil {
		return AudioIntakeResult{}, fmt.Errorf("media: audio intake: %w", err)
	}
	mp4Path := tmp.Name()
	_ = tmp.Close()
	defer func() { _ = os.Remove(mp4Path) }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, audioIntakeArgs(file, o.Rate, in.channels == 1, mp4Path)...)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return AudioIntakeResult{}, fmt.Errorf("media: ffmpeg stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return AudioIntakeResult{}, fmt.Errorf("media: start ffmpeg: %w", err)
	}
	limit := int64(-1)
	if o.MaxSeconds > 0 {
		limit = int64(math.Ceil(o.MaxSeconds * float64(o.Rate)))
	}
	pcm := pcmSink{w: o.PCM, bucket: o.Rate / 100, limit: limit}
	readErr := pcm.readFrom(bufio.NewReaderSize(stdout, 1<<16))
	if readErr != nil {
		cancel()
	}
	waitErr := cmd.Wait()
	switch {
	case errors.Is(readErr, errTooLong):
		return AudioIntakeResult{}, fmt.Errorf("%w: the audio lasts more than %.3f s (its header says %.3f s): want at most %g s",
			ErrIntake, float64(limit)/float64(o.Rate), in.seconds, o.MaxSeconds)
	case readErr != nil:
		return AudioIntakeResult{}, readErr
	case waitErr != nil && ctx.Err() != nil:
		return AudioIntakeResult{}, fmt.Errorf("media: audio intake: %w", context.Cause(ctx))
	case waitErr != nil && strings.Contains(stderr.String(), "resampling engine is unavailable"):
		return AudioIntakeResult{}, fmt.Errorf("media: audio intake needs an ffmpeg built with libsoxr (Debian's is): %s", logTail(stderr))
	case waitErr != nil:
		return AudioIntakeResult{}, fmt.Errorf("%w: ffmpeg cannot decode the audio: %s", ErrIntake, logTail(stderr))
	case pcm.samples == 0:
		return AudioIntakeResult{}, fmt.Errorf("%w: the audio stream holds no sample", ErrIntake)
	}
	track, sizes, err := copyAACPackets(mp4Path, o.AAC)
	if err != nil {
		return AudioIntakeResult{}, err
	}
	return AudioIntakeResult{Samples: pcm.samples, Track: track, Index: EncodeAACIndex(sizes), Peaks: pcm.peaks}, nil
}

// audioIntakeArgs is the ffmpeg command line of IntakeAudio: the first
// audio stream decoded once, into two outputs: mono float32 PCM at rate on
// stdout, and AAC-LC at AACRate in an MP4 at mp4Path. asetpts numbers the
// samples from 0 with no gap, before resampling and after (where
// timestamps converted from the input's rate may be rounded), so that the
// MP4's sample durations add up exactly to the priming and the samples
// encoded.
func audioIntakeArgs(file string, rate int, mono bool, mp4Path string) []string {
	layout, bitrate := "stereo", "128k"
	if mono {
		layout, bitrate = "mono", "96k"
	}
	chain := func(rate int, layout string) string {
		return "asetpts=N/SR/TB,aresample=" + strconv.Itoa(rate) + ":resampler=soxr:ochl=" + layout + ":rematrix_maxval=1,asetpts=N/SR/TB"
	}
	return []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", file, "-filter_threads", "1",
		"-map", "0:a:0", "-vn", "-sn", "-dn", "-af", chain(rate, "mono"), "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1",
		"-map", "0:a:0", "-vn", "-sn", "-dn", "-af", chain(AACRate, layout), "-threads", "1",
		"-c:a", "aac", "-profile:a", "aac_low", "-b:a", bitrate, "-flags:a", "+bitexact", "-fflags", "+bitexact",
		"-movie_timescale", strconv.Itoa(AACRate), "-f", "mp4", "-y", mp4Path}
}

// audioInput is what ffprobe says of a file's first audio stream.
type audioInput struct {
	channels int
	seconds  float64 // 0 when unknown
}

// probeAudio finds a file's first audio stream.
func probeAudio(ctx context.Context, file string) (audioInput, error) {
	bin, err := lookPath("ffprobe")
	if err != nil {
		return audioInput{}, err
	}
	out, err := run(ctx, bin, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels,duration:format=duration",
		"-of", "json", file)
	if err != nil {
		if ctx.Err() != nil {
			return audioInput{}, ctx.Err()
		}
		return audioInput{}, fmt.Errorf("%w: ffprobe cannot read the file: %w", ErrIntake, err)
	}
	var doc struct {
		Streams []struct {
			Channels int    `json:"channels"`
			Duration string `json:"duration"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return audioInput{}, fmt.Errorf("media: ffprobe output: %w", err)
	}
	if len(doc.Streams) == 0 {
		return audioInput{}, fmt.Errorf("%w: no audio stream in the file", ErrIntake)
	}
	s := doc.Streams[0]
	in := audioInput{channels: s.Channels, seconds: seconds(s.Duration)}
	if in.seconds <= 0 {
		in.seconds = seconds(doc.Format.Duration)
	}
	return in, nil
}

// errTooLong stops the PCM at IntakeAudio's bound.
var errTooLong = errors.New("media: audio over its bound")

// pcmSink passes mono float32 samples on, counting them and taking their
// peaks.
type pcmSink struct {
	w       io.Writer
	bucket  int   // samples a peak covers
	limit   int64 // most samples allowed, < 0 for no bound
	samples int64
	peaks   []byte
	peak    float32 // of the current bucket
	inPeak  int     // samples in it
}

// readFrom reads samples from r to its end.
func (p *pcmSink) readFrom(r io.Reader) error {
	buf := make([]byte, 1<<16)
	for {
		n, err := io.ReadFull(r, buf)
		if n%4 != 0 && err == nil {
			return fmt.Errorf("media: pcm read of %d bytes", n) // a full buffer is whole samples
		}
		if n >= 4 {
			if werr := p.write(buf[:n-n%4]); werr != nil {
				return werr
			}
		}
		switch {
		case err == io.EOF || (err == io.ErrUnexpectedEOF && n%4 == 0):
			if p.inPeak > 0 {
				p.peaks = append(p.peaks, peakByte(p.peak))
			}
			return nil
		case err == io.ErrUnexpectedEOF:
			return fmt.Errorf("%w: the PCM ends in the middle of a sample", ErrIntake)
		case err != nil:
			return fmt.Errorf("media: read pcm: %w", err)
		}
	}
}

func (p *pcmSink) write(b []byte) error {
	n := int64(len(b) / 4)
	if p.limit >= 0 && p.samples+n > p.limit {
		return errTooLong
	}
	for i := 0; i < len(b); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
		if v < 0 {
			v = -v
		}
		if v > p.peak { // NaN is never greater
			p.peak = v
		}
		p.inPeak++
		if p.inPeak == p.bucket {
			p.peaks = append(p.peaks, peakByte(p.peak))
			p.peak, p.inPeak = 0, 0
		}
	}
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("media: write pcm: %w", err)
	}
	p.samples += n
	return nil
}

// peakByte is |sample| × 255, rounded, clamped.
func peakByte(v float32) byte {
	return byte(math.Round(float64(min(v, 1)) * 255))
}

// copyAACPackets reads the MP4 IntakeAudio's ffmpeg wrote, copies its
// packets to w back to back and returns the track and the packets' sizes.
func copyAACPackets(path string, w io.Writer) (AACTrack, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return AACTrack{}, nil, fmt.Errorf("media: aac: %w", err)
	}
	defer func() { _ = f.Close() }()
	file, err := mp4.DecodeFile(f, mp4.WithDecodeMode(mp4.DecModeLazyMdat))
	if err != nil {
		return AACTrack{}, nil, fmt.Errorf("media: aac: read the mp4: %w", err)
	}
	if file.Moov == nil || file.Moov.Trak == nil {
		return AACTrack{}, nil, errors.New("media: aac: the mp4 has no track")
	}
	trak := file.Moov.Trak
	stbl := trak.Mdia.Minf.Stbl
	if stbl.Stsd == nil || stbl.Stsd.Mp4a == nil || stbl.Stsd.Mp4a.Esds == nil || stbl.Stts == nil || stbl.Stsc == nil || stbl.Stsz == nil {
		return AACTrack{}, nil, errors.New("media: aac: the mp4's track lacks an mp4a entry or a sample table")
	}
	if ts := trak.Mdia.Mdhd.Timescale; ts != AACRate {
		return AACTrack{}, nil, fmt.Errorf("media: aac: track timescale %d, want %d", ts, AACRate)
	}
	dc := stbl.Stsd.Mp4a.Esds.DecConfigDescriptor
	if dc == nil || dc.DecSpecificInfo == nil {
		return AACTrack{}, nil, errors.New("media: aac: the mp4 has no AudioSpecificConfig")
	}
	asc := dc.DecSpecificInfo.DecConfig
	if len(asc) < 2 {
		return AACTrack{}, nil, fmt.Errorf("media: aac: AudioSpecificConfig %x is too short", asc)
	}
	// The channels are the config's (an MP4's sample entry says 2 for any
	// AAC): 5 bits of object type, 4 of rate index, 4 of channels.
	t := AACTrack{SampleRate: AACRate, Channels: int(asc[1]>>3) & 15, Config: bytes.Clone(asc)}
	t.Priming = priming(trak)
	var total int64
	for i, c := range stbl.Stts.SampleCount {
		total += int64(c) * int64(stbl.Stts.SampleTimeDelta[i])
	}
	t.Samples = total - int64(t.Priming)
	n := int(stbl.Stsz.GetNrSamples())
	t.Packets = n
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = int(stbl.Stsz.GetSampleSize(i + 1))
	}
	if err := copyChunks(f, stbl, sizes, w); err != nil {
		return AACTrack{}, nil, err
	}
	if t.Packets < 1 || t.Samples < 1 {
		return AACTrack{}, nil, fmt.Errorf("media: aac: %d packets of %d samples", t.Packets, t.Samples)
	}
	return t, sizes, nil
}

// priming is the media time of a track's first edit that is not empty:
// the samples the decoder drops from the start (0 without an edit list).
func priming(trak *mp4.TrakBox) int {
	if trak.Edts == nil {
		return 0
	}
	for _, elst := range trak.Edts.Elst {
		for _, e := range elst.Entries {
			if e.MediaTime >= 0 {
				return int(e.MediaTime)
			}
		}
	}
	return 0
}

// copyChunks copies the samples of a track's chunks, in order, from r to w.
func copyChunks(r io.ReaderAt, stbl *mp4.StblBox, sizes []int, w io.Writer) error {
	var offsets []uint64
	switch {
	case stbl.Co64 != nil:
		offsets = stbl.Co64.ChunkOffset
	case stbl.Stco != nil:
		for _, o := range stbl.Stco.ChunkOffset {
			offsets = append(offsets, uint64(o))
		}
	default:
		return errors.New("media: aac: the mp4 has no chunk offsets")
	}
	next := 0 // first sample of the chunk, 0-based
	for c := range offsets {
		chunk := stbl.Stsc.GetChunk(uint32(c + 1))
		if int(chunk.StartSampleNr) != next+1 || next+int(chunk.NrSamples) > len(sizes) {
			return fmt.Errorf("media: aac: chunk %d holds samples %d+%d, want from %d of %d", c+1, chunk.StartSampleNr, chunk.NrSamples, next+1, len(sizes))
		}
		var size int64
		for _, s := range sizes[next : next+int(chunk.NrSamples)] {
			size += int64(s)
		}
		if _, err := io.CopyN(w, io.NewSectionReader(r, int64(offsets[c]), size), size); err != nil {
			return fmt.Errorf("media: aac: copy packets: %w", err)
		}
		next += int(chunk.NrSamples)
	}
	if next != len(sizes) {
		return fmt.Errorf("media: aac: chunks hold %d of %d samples", next, len(sizes))
	}
	return nil
}
