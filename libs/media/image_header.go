package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"strings"
)

// maxHeaderRead bounds how far into a file its image header is looked for:
// a JPEG's size comes after its metadata segments (EXIF, XMP, ICC), each at
// most 64 KiB.
const maxHeaderRead = 16 << 20

// openHead opens input, a path or an http(s) URL, to read its first bytes.
func openHead(ctx context.Context, input string) (io.ReadCloser, error) {
	if !strings.HasPrefix(input, "http://") && !strings.HasPrefix(input, "https://") {
		f, err := os.Open(input)
		if err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		return f, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, input, nil)
	if err != nil {
		return nil, fmt.Errorf("media: read %s: %w", redactURL(input), err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("media: read %s: %w", redactURL(input), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("media: read %s: %s", redactURL(input), resp.Status)
	}
	return resp.Body, nil
}

// redactURL drops a URL's query, where a presigned URL keeps its signature.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// sniffImage reads the size of the image r starts with from its header,
// without decoding it: format is png, jpeg, gif, bmp or webp, or "" when r
// starts with none of them (or a header that does not parse: ffprobe then
// decides). empty reports that r holds no byte at all.
func sniffImage(r io.Reader) (format string, w, h int, empty bool, err error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeaderRead), 64<<10)
	magic, err := br.Peek(32)
	if len(magic) == 0 {
		if err == io.EOF {
			return "", 0, 0, true, nil
		}
		return "", 0, 0, false, fmt.Errorf("media: read the file's head: %w", err)
	}
	var cfg image.Config
	switch {
	case bytes.HasPrefix(magic, []byte("\x89PNG\r\n\x1a\n")):
		format = "png"
		cfg, err = png.DecodeConfig(br)
	case bytes.HasPrefix(magic, []byte{0xff, 0xd8, 0xff}):
		format = "jpeg"
		cfg, err = jpeg.DecodeConfig(br)
	case bytes.HasPrefix(magic, []byte("GIF87a")) || bytes.HasPrefix(magic, []byte("GIF89a")):
		format = "gif"
		cfg, err = gif.DecodeConfig(br)
	case bytes.HasPrefix(magic, []byte("BM")):
		format = "bmp"
		cfg, err = bmpConfig(magic)
	case len(magic) >= 12 && string(magic[:4]) == "RIFF" && string(magic[8:12]) == "WEBP":
		format = "webp"
		cfg, err = webpConfig(magic)
	default:
		return "", 0, 0, false, nil
	}
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return "", 0, 0, false, nil
	}
	return format, cfg.Width, cfg.Height, false, nil
}

// bmpConfig reads a BMP's size from its DIB header: BITMAPCOREHEADER
// (16-bit sizes) or a later one (32-bit; a negative height is a top-down
// picture).
func bmpConfig(b []byte) (image.Config, error) {
	if len(b) < 26 {
		return image.Config{}, fmt.Errorf("bmp header cut short")
	}
	if binary.LittleEndian.Uint32(b[14:]) == 12 {
		return image.Config{Width: int(binary.LittleEndian.Uint16(b[18:])), Height: int(binary.LittleEndian.Uint16(b[20:]))}, nil
	}
	w := int64(int32(binary.LittleEndian.Uint32(b[18:])))
	h := int64(int32(binary.LittleEndian.Uint32(b[22:])))
	if h < 0 {
		h = -h
	}
	if w > 1<<30 || h > 1<<30 {
		return image.Config{}, fmt.Errorf("bmp size %d×%d", w, h)
	}
	return image.Config{Width: int(w), Height: int(h)}, nil
}

// webpConfig reads a WebP's size from its first chunk: VP8 (lossy), VP8L
// (lossless) or VP8X (extended, the canvas).
func webpConfig(b []byte) (image.Config, error) {
	if len(b) < 30 {
		return image.Config{}, fmt.Errorf("webp header cut short")
	}
	c := b[20:]
	switch string(b[12:16]) {
	case "VP8 ": // frame tag (3), start code 9d 01 2a, 14-bit sizes
		if c[3] != 0x9d || c[4] != 0x01 || c[5] != 0x2a {
			return image.Config{}, fmt.Errorf("webp VP8 start code missing")
		}
		return image.Config{Width: int(binary.LittleEndian.Uint16(c[6:]) & 0x3fff), Height: int(binary.LittleEndian.Uint16(c[8:]) & 0x3fff)}, nil
	case "VP8L": // signature 2f, then 14 bits width-1, 14 bits height-1
		if c[0] != 0x2f {
			return image.Config{}, fmt.Errorf("webp VP8L signature missing")
		}
		bits := binary.LittleEndian.Uint32(c[1:])
		return image.Config{Width: int(bits&0x3fff) + 1, Height: int(bits>>14&0x3fff) + 1}, nil
	case "VP8X": // flags (4), 24 bits canvas width-1, 24 bits height-1
		return image.Config{Width: int(uint24(c[4:])) + 1, Height: int(uint24(c[7:])) + 1}, nil
	}
	return image.Config{}, fmt.Errorf("webp chunk %q", b[12:16])
}

func uint24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }
