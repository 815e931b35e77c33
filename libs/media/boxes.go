package media

import (
	"encoding/binary"
	"fmt"
)

// splitTop splits a fragmented MP4 at its top-level boxes: the init
// segment is every box before the first moof, kept byte for byte (mp4ff
// does not write back every codec configuration it reads, e.g. High 4:4:4
// SPS extensions); each fragment is a moof with the boxes up to the next
// moof (its mdat).
func splitTop(data []byte) (init []byte, frags [][]byte, err error) {
	start := -1 // of the current fragment
	for off := 0; off < len(data); {
		if len(data)-off < 8 {
			return nil, nil, fmt.Errorf("%w (%d stray bytes at %d)", ErrNotFragmented, len(data)-off, off)
		}
		size := uint64(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		switch size {
		case 0: // to the end of the file
			size = uint64(len(data) - off)
		case 1:
			if len(data)-off < 16 {
				return nil, nil, fmt.Errorf("%w (truncated large box at %d)", ErrNotFragmented, off)
			}
			size = binary.BigEndian.Uint64(data[off+8:])
		}
		if size < 8 || size > uint64(len(data)-off) {
			return nil, nil, fmt.Errorf("%w (box %q of %d bytes at %d overruns the data)", ErrNotFragmented, typ, size, off)
		}
		if typ == "moof" {
			if start >= 0 {
				frags = append(frags, data[start:off])
			} else {
				init = data[:off]
			}
			start = off
		}
		off += int(size)
	}
	if start < 0 || len(init) == 0 {
		return nil, nil, fmt.Errorf("%w (no init segment or no fragment)", ErrNotFragmented)
	}
	return init, append(frags, data[start:]), nil
}
