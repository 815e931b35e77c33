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
		{func() (blob.Key, error) { return blob.HLSFile("j1", "index.m3u8") }, "jobs/j1/hls/index.m3u8"},
		{func() (blob.Key, error) { return blob.HLSFile("j1", "init.mp4") }, "jobs/j1/hls/init.mp4"},
		{func() (blob.Key, error) { return blob.HLSFile("j1", "12.m4s") }, "jobs/j1/hls/12.m4s"},
		{func() (blob.Key, error) { return blob.HLSFile("j1", "in0.m4s") }, "jobs/j1/hls/in0.m4s"},
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
	for _, name := range []string{"", "007.m4s", "+1.m4s", "4294967296.m4s", "in.m4s", "1.mp4", "../final.mp4", "index.m3u8/", "x.m4s"} {
		bad = append(bad, func() (blob.Key, error) { return blob.HLSFile("j1", name) })
		if _, err := blob.HLSFile("j1", name); !errors.Is(err, blob.ErrNoPreviewFile) {
			t.Errorf("preview file %q: %v, want ErrNoPreviewFile", name, err)
		}
	}
	for i, f := range bad {
		if k, err := f(); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("bad case %d: got %q %v", i, k, err)
		}
	}
}

// FuzzKeys: no input of any route or message yields a key outside its
// job's or its tenant's upload's prefix. Every key a builder makes from
// arbitrary ids, tenants, indices and names is either refused (an error
// wrapping ErrInvalidKey, and no key) or lies under jobs/<job>/ or
// uploads/<tenant>/<upload>/ of exactly the job or tenant and upload
// given, holds no "..", "//", leading '/' or control character, and parses
// back (OwnerOf) to that job or that tenant and upload. Any key OwnerOf or
// the Parse functions accept is such a key.
func FuzzKeys(f *testing.F) {
	for _, s := range []string{"j1", "../x", "a/../../b", "%2e%2e", "é", "a\x00b", "", strings.Repeat("z", 300), "jobs/j1/in/x", "jobs/j1/in/../x",
		"a\\b", "//", ".", "up-7k2", "up-../x", "index.m3u8", "init.mp4", "7.m4s", "in0.m4s", "007.m4s", "4294967296.m4s", "..m4s",
		"jobs/j1/seg/3/a2/tail.bin", "jobs/j1/hls/in3.m4s", "uploads/acme/up-7k2/derived/960x540-24fps-crop/image.rgb", "uploads/acme/up-7k2/source",
		"jobs/j1/final.mp4/", "jobs//final.mp4", "/jobs/j1/final.mp4"} {
		f.Add(s, s, "acme", uint32(1), uint32(1))
		f.Add("j1", s, "up-7k2", uint32(3), uint32(2))
	}
	f.Fuzz(func(t *testing.T, job, name, tenant string, idx, attempt uint32) {
		clean := func(k string) {
			t.Helper()
			if strings.Contains(k, "..") || strings.Contains(k, "//") || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") ||
				strings.IndexFunc(k, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 || path.Clean(k) != k {
				t.Fatalf("key %q is not a clean path of printable ASCII", k)
			}
		}
		refused := func(k blob.Key, err error) bool {
			t.Helper()
			if err == nil {
				return false
			}
			if !errors.Is(err, blob.ErrInvalidKey) || k != "" {
				t.Fatalf("refused with %q and %v: want no key and ErrInvalidKey", k, err)
			}
			return true
		}
		owned := func(k blob.Key, err error, want blob.Owner) {
			t.Helper()
			if refused(k, err) {
				return
			}
			s := string(k)
			clean(s)
			prefix := "jobs/" + want.Job + "/"
			if want.Job == "" {
				prefix = "uploads/" + want.Tenant + "/" + want.Upload + "/"
			}
			if !strings.HasPrefix(s, prefix) {
				t.Fatalf("key %q lies outside %q", s, prefix)
			}
			if o, err := blob.OwnerOf(s); err != nil || o != want {
				t.Fatalf("key %q parses back to %+v, %v: want %+v", s, o, err, want)
			}
		}
		ofJob, ofUpload := blob.Owner{Job: job}, blob.Owner{Tenant: tenant, Upload: name}
		for _, ext := range []string{"m4s", "mp4", name} {
			k, err := blob.SegmentVideo(job, idx, attempt, ext)
			owned(k, err, ofJob)
		}
		k, err := blob.SegmentTail(job, idx, attempt)
		owned(k, err, ofJob)
		for _, build := range []func(string, uint32) (blob.Key, error){blob.HLSSegment, blob.HLSInputSegment} {
			k, err := build(job, idx)
			owned(k, err, ofJob)
		}
		for _, build := range []func(string) (blob.Key, error){blob.HLSPlaylist, blob.HLSInit, blob.Final} {
			k, err := build(job)
			owned(k, err, ofJob)
		}
		k, err = blob.HLSFile(job, name) // GET /jobs/{id}/hls/{file}
		owned(k, err, ofJob)
		k, err = blob.ParseTailKey(job, name) // a result's tail key
		owned(k, err, ofJob)
		k, err = blob.ParseTailKey(job, "jobs/"+job+"/"+name)
		owned(k, err, ofJob)
		if p, err := blob.JobPrefix(job); !refused(p, err) && string(p) != "jobs/"+job+"/" {
			t.Fatalf("job prefix %q of %q", p, job)
		}
		for _, build := range []func(string, string) (blob.Key, error){blob.UploadSource, blob.UploadIncoming} { // /uploads/{id}?tenant=
			k, err := build(tenant, name)
			owned(k, err, ofUpload)
		}
		k, err = blob.UploadDerived(tenant, name, job, name) // intake, from a spec's upload ids
		owned(k, err, ofUpload)
		if p, err := blob.UploadPrefix(tenant, name); !refused(p, err) && string(p) != "uploads/"+tenant+"/"+name+"/" {
			t.Fatalf("upload prefix %q of %q, %q", p, tenant, name)
		}
		// Whatever key a message carries: accepted only as one of the
		// builders' own, under the prefix of the owner it parses to.
		for _, key := range []string{name, job, "jobs/" + job + "/" + name, "uploads/" + tenant + "/" + name} {
			o, err := blob.OwnerOf(key)
			if err != nil {
				if !errors.Is(err, blob.ErrInvalidKey) || o != (blob.Owner{}) {
					t.Fatalf("OwnerOf(%q) refused with %+v, %v", key, o, err)
				}
			} else if (o.Job == "") == (o.Upload == "") {
				t.Fatalf("OwnerOf(%q) = %+v: want a job or an upload", key, o)
			} else {
				owned(blob.Key(key), nil, o)
			}
			k, err := blob.ParseUploadDerivedKey(key)
			if refused(k, err) {
				continue
			}
			if o, err := blob.OwnerOf(string(k)); err != nil || o.Job != "" {
				t.Fatalf("derived key %q: owner %+v, %v", k, o, err)
			} else {
				owned(k, nil, o)
			}
		}
	})
}

// TestOwnerOf: a key of a job or an upload parses back to its owner; any
// key no builder makes is refused.
func TestOwnerOf(t *testing.T) {
	for key, want := range map[string]blob.Owner{
		"jobs/j1/seg/3/a2/video.m4s":                               {Job: "j1"},
		"jobs/j1/seg/0/a1/tail.bin":                                {Job: "j1"},
		"jobs/j-2/hls/in4.m4s":                                     {Job: "j-2"},
		"jobs/j1/final.mp4":                                        {Job: "j1"},
		"uploads/acme/up-7k2/source":                               {Tenant: "acme", Upload: "up-7k2"},
		"uploads/acme/up-7k2/derived/960x540-24fps-crop/image.rgb": {Tenant: "acme", Upload: "up-7k2"},
	} {
		if o, err := blob.OwnerOf(key); err != nil || o != want {
			t.Errorf("%s: %+v %v, want %+v", key, o, err, want)
		}
	}
	for _, key := range []string{"", "jobs/j1", "jobs/j1/", "jobs/j1/final.mp4/", "/jobs/j1/final.mp4", "jobs//final.mp4", "jobs/J1/final.mp4",
		"jobs/j1/seg/03/a2/tail.bin", "jobs/j1/seg/3/a0/tail.bin", "jobs/j1/seg/3/2/tail.bin", "jobs/j1/hls/../final.mp4", "jobs/j1/other",
		"uploads/acme/up-7k2", "uploads/acme/up-7k2/derived/../source", "uploads/Acme/up-7k2/source", "uploads/acme/x/source", "jobs/j1/seg/3/a2/video.exe"} {
		if o, err := blob.OwnerOf(key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("%q accepted: %+v %v", key, o, err)
		}
	}
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
