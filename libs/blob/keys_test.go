package blob_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
)

func TestKeys(t *testing.T) {
	cases := []struct {
		got  func() (blob.Key, error)
		want string
	}{
		{func() (blob.Key, error) { return blob.SegmentVideo("j1", 3, 2, "m4s") }, "jobs/j1/seg/3/a2/video.m4s"},
		{func() (blob.Key, error) { return blob.SegmentVideo("j1", 0, 1, "mp4") }, "jobs/j1/seg/0/a1/video.mp4"},
		{func() (blob.Key, error) { return blob.SegmentTail("job-7_x", 12, 1) }, "jobs/job-7_x/seg/12/a1/tail.bin"},
		{func() (blob.Key, error) { return blob.HLSPlaylist("j1") }, "jobs/j1/hls/index.m3u8"},
		{func() (blob.Key, error) { return blob.HLSInit("j1") }, "jobs/j1/hls/init.mp4"},
		{func() (blob.Key, error) { return blob.HLSSegment("j1", 4) }, "jobs/j1/hls/4.m4s"},
		{func() (blob.Key, error) { return blob.Final("j1") }, "jobs/j1/final.mp4"},
		{func() (blob.Key, error) { return blob.UploadSource("acme", "up-7k2") }, "uploads/acme/up-7k2/source"},
		{func() (blob.Key, error) { return blob.UploadIncoming("acme", "up-7k2") }, "uploads/acme/up-7k2/incoming"},
		{func() (blob.Key, error) {
			return blob.UploadDerived("acme", "up-7k2", "960x540-24fps-crop", "image.rgb")
		},
			"uploads/acme/up-7k2/derived/960x540-24fps-crop/image.rgb"},
		{func() (blob.Key, error) { return blob.ParseTailKey("j1", "jobs/j1/seg/3/a2/tail.bin") }, "jobs/j1/seg/3/a2/tail.bin"},
	}
	for _, c := range cases {
		k, err := c.got()
		if err != nil || string(k) != c.want {
			t.Errorf("got %q %v, want %q", k, err, c.want)
		}
	}
	bad := []func() (blob.Key, error){
		func() (blob.Key, error) { return blob.Final("") },
		func() (blob.Key, error) { return blob.Final("../x") },
		func() (blob.Key, error) { return blob.Final("A") },
		func() (blob.Key, error) { return blob.Final("-x") },
		func() (blob.Key, error) { return blob.Final(strings.Repeat("a", 65)) },
		func() (blob.Key, error) { return blob.SegmentTail("j", 0, 0) },
		func() (blob.Key, error) { return blob.SegmentVideo("j", 0, 1, "exe") },
		func() (blob.Key, error) { return blob.UploadSource("acme", "../x") },
		func() (blob.Key, error) { return blob.UploadSource("acme", "up-") },
		func() (blob.Key, error) { return blob.UploadSource("acme", "up-A") },
		func() (blob.Key, error) { return blob.UploadSource("../acme", "up-a") },
		func() (blob.Key, error) { return blob.UploadDerived("acme", "up-a", "..", "x") },
		func() (blob.Key, error) { return blob.UploadDerived("acme", "up-a", "v", "a/b") },
		func() (blob.Key, error) { return blob.ParseTailKey("j", "jobs/k/seg/1/a1/tail.bin") },
		func() (blob.Key, error) { return blob.ParseTailKey("j", "jobs/j/seg/1/a1/tail.bin/../../x") },
		func() (blob.Key, error) { return blob.ParseTailKey("j", "jobs/j/seg/01/a1/tail.bin") },
	}
	for i, f := range bad {
		if k, err := f(); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("bad case %d: got %q %v", i, k, err)
		}
	}
}

// FuzzKeys: no input makes a key outside jobs/<job>/.
func FuzzKeys(f *testing.F) {
	for _, s := range []string{"j1", "../x", "a/../../b", "%2e%2e", "é", "a\x00b", "", strings.Repeat("z", 300), "jobs/j1/in/x", "jobs/j1/in/../x", "a\\b", "//", "."} {
		f.Add(s, s, uint32(1), uint32(1))
	}
	f.Fuzz(func(t *testing.T, job, name string, idx, attempt uint32) {
		check := func(k blob.Key, err error) {
			if err != nil {
				if !errors.Is(err, blob.ErrInvalidKey) {
					t.Fatalf("error without ErrInvalidKey: %v", err)
				}
				return
			}
			s := string(k)
			prefix := "jobs/" + job + "/"
			if !strings.HasPrefix(s, prefix) || !strings.HasPrefix(path.Clean(s)+"/", prefix) ||
				strings.Contains(s, "..") || strings.Contains(s, "//") || strings.ContainsAny(s, "\\\x00") || strings.HasPrefix(s, "/") {
				t.Fatalf("key %q escapes %q", s, prefix)
			}
			if c := path.Clean(s); c != strings.TrimSuffix(s, "/") {
				t.Fatalf("key %q is not clean (%q)", s, c)
			}
		}
		check(blob.SegmentVideo(job, idx, attempt, "m4s"))
		check(blob.SegmentTail(job, idx, attempt))
		check(blob.HLSSegment(job, idx))
		check(blob.Final(job))
		check(blob.ParseTailKey(job, name))
		check(blob.ParseTailKey(job, "jobs/"+job+"/"+name))
		// Upload keys: job stands for the tenant, name for the id.
		inUploads := func(k blob.Key, err error) {
			if err != nil {
				if !errors.Is(err, blob.ErrInvalidKey) {
					t.Fatalf("error without ErrInvalidKey: %v", err)
				}
				return
			}
			s, prefix := string(k), "uploads/"+job+"/"+name+"/"
			if !strings.HasPrefix(s, prefix) || path.Clean(s) != s || strings.Contains(s, "..") || strings.ContainsAny(s, "\\\x00") {
				t.Fatalf("key %q escapes %q", s, prefix)
			}
		}
		inUploads(blob.UploadSource(job, name))
		if k, err := blob.ParseUploadDerivedKey(name); err == nil && !strings.HasPrefix(string(k), "uploads/") {
			t.Fatalf("derived key %q accepted outside uploads/", k)
		} else if err != nil && !errors.Is(err, blob.ErrInvalidKey) {
			t.Fatalf("error without ErrInvalidKey: %v", err)
		}
		inUploads(blob.UploadIncoming(job, name))
		inUploads(blob.UploadDerived(job, name, name, name))
	})
}

func TestNewUploadID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := blob.NewUploadID()
		if err := blob.ValidateUploadID(id); err != nil || len(id) != len("up-")+26 || seen[id] {
			t.Fatalf("id %q: %v (seen: %v)", id, err, seen[id])
		}
		seen[id] = true
	}
}
