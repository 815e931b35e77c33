package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

// TestS3PoliciesAreTheDeployedFiles: the policies devstack applies are
// byte for byte deploy/minio/<service>.json and the block that
// deploy/README.md shows of it, every statement names only the stack's
// bucket, and no service may do anything to every key.
func TestS3PoliciesAreTheDeployedFiles(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range devstack.S3Services {
		t.Run(svc, func(t *testing.T) {
			doc, err := devstack.S3Policy(svc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "..", "deploy", "minio", svc+".json")
			deployed, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v: each service's policy must be in deploy/minio", err)
			}
			if !bytes.Equal(doc, deployed) {
				t.Fatalf("%s differs from libs/devstack/minio-policies/%s.json: copy the one you changed over the other", path, svc)
			}
			_, shown, _ := strings.Cut(string(readme), "`deploy/minio/"+svc+".json`:\n\n```json\n")
			if shown, _, _ = strings.Cut(shown, "```"); shown != string(doc) {
				t.Fatalf("deploy/README.md shows another policy of %s than %s:\n%s", svc, path, shown)
			}
			var p struct {
				Statement []struct {
					Action   []string
					Resource []string
				}
			}
			if err := json.Unmarshal(doc, &p); err != nil {
				t.Fatal(err)
			}
			arn := "arn:aws:s3:::" + devstack.S3Bucket
			for _, st := range p.Statement {
				for _, r := range st.Resource {
					if r != arn && !strings.HasPrefix(r, arn+"/") || r == arn+"/*" {
						t.Errorf("resource %s: want %s or a key pattern under it narrower than %s/*", r, arn, arn)
					}
				}
				for _, a := range st.Action {
					if strings.Contains(a, "*") {
						t.Errorf("action %s: name each action", a)
					}
				}
			}
		})
	}
	if _, err := devstack.S3Policy("root"); err == nil {
		t.Error("S3Policy(root): want an error")
	}
}

// refused reports whether err is MinIO's refusal: AccessDenied, 403 from a
// presigned URL, or a name the server takes for no key at all (one with
// ".." components), and says which.
func refused(err error) (string, bool) {
	var er minio.ErrorResponse
	var se statusError
	switch {
	case errors.As(err, &er) && (er.Code == "AccessDenied" || er.Code == "XMinioInvalidResourceName"):
		return er.Code, true
	case errors.As(err, &se) && se.code == http.StatusForbidden:
		return se.Error(), true
	}
	return "", false
}

// s3op is one storage operation, as a service's code performs it through
// libs/blob.
type s3op struct {
	name string
	do   func(ctx context.Context, b *blob.Store) error
}

func put(k blob.Key) s3op {
	return s3op{"put " + string(k), func(ctx context.Context, b *blob.Store) error {
		_, err := b.Put(ctx, k, strings.NewReader("bytes of "+string(k)), -1, blob.PutOptions{})
		return err
	}}
}

// putParts streams 6 MiB into k with NewWriter, as a worker writes its video
// and the dispatcher a derived input: a multipart upload of two 5 MiB parts
// (the store's part size).
func putParts(k blob.Key) s3op {
	return s3op{"stream " + string(k), func(ctx context.Context, b *blob.Store) error {
		w := b.NewWriter(ctx, k, blob.PutOptions{ContentType: "video/mp4"})
		if _, err := w.Write(bytes.Repeat([]byte{7}, 6<<20)); err != nil {
			w.Abort(err)
			return err
		}
		return w.Close()
	}}
}

// multipart writes k in a caller-driven multipart upload, as the stitcher
// writes a final video and the gateway a streamed upload; abort aborts it
// after its first part instead.
func multipart(k blob.Key, abort bool) s3op {
	name := "multipart " + string(k)
	if abort {
		name = "abort multipart " + string(k)
	}
	return s3op{name, func(ctx context.Context, b *blob.Store) error {
		id, err := b.NewMultipart(ctx, k, blob.PutOptions{ContentType: "video/mp4"})
		if err != nil {
			return err
		}
		p, err := b.UploadPart(ctx, k, id, 1, strings.NewReader("part"), 4)
		if err != nil {
			return err
		}
		if abort {
			return b.AbortMultipart(ctx, k, id)
		}
		_, err = b.CompleteMultipart(ctx, k, id, []blob.Part{p})
		return err
	}}
}

func get(k blob.Key) s3op {
	return s3op{"get " + string(k), func(ctx context.Context, b *blob.Store) error {
		r, _, err := b.Get(ctx, k)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(io.Discard, r)
		return err
	}}
}

func stat(k blob.Key) s3op {
	return s3op{"stat " + string(k), func(ctx context.Context, b *blob.Store) error { _, err := b.Stat(ctx, k); return err }}
}

func readRange(k blob.Key) s3op {
	return s3op{"read a range of " + string(k), func(ctx context.Context, b *blob.Store) error {
		_, err := b.ReadRange(ctx, k, 2, 5)
		return err
	}}
}

// missing reads k, which does not exist: the service must be told so
// (ErrNotFound), as a worker waiting for a tail is.
func missing(k blob.Key) s3op {
	return s3op{"find " + string(k) + " missing", func(ctx context.Context, b *blob.Store) error {
		if _, _, err := b.Get(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("got %v, want ErrNotFound", err)
		}
		return nil
	}}
}

func del(k blob.Key) s3op {
	return s3op{"delete " + string(k), func(ctx context.Context, b *blob.Store) error { return b.Delete(ctx, k) }}
}

func delPrefix(p blob.Key, multipart ...blob.Key) s3op {
	return s3op{"delete everything under " + string(p), func(ctx context.Context, b *blob.Store) error {
		_, err := b.DeletePrefix(ctx, p, multipart...)
		return err
	}}
}

func list(p blob.Key) s3op {
	return s3op{"list " + string(p), func(ctx context.Context, b *blob.Store) error { _, err := b.List(ctx, p); return err }}
}

func cp(src, dst blob.Key) s3op {
	return s3op{"copy " + string(src) + " to " + string(dst), func(ctx context.Context, b *blob.Store) error {
		st, err := b.Stat(ctx, src)
		if err != nil {
			return err
		}
		_, err = b.Copy(ctx, src, dst, st.ETag)
		return err
	}}
}

// statusError is an HTTP answer other than 200; 403 counts as denied.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// presigned does method on a URL presigned by the service's credentials,
// as a player fetching a video or a client PUTting an upload does.
func presigned(method string, k blob.Key) s3op {
	return s3op{"presigned " + method + " " + string(k), func(ctx context.Context, b *blob.Store) error {
		presign := b.PresignGet
		var body io.Reader
		if method == http.MethodPut {
			presign, body = b.PresignPut, strings.NewReader("put through a presigned URL")
		}
		u, err := presign(ctx, k, time.Minute)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return statusError{resp.StatusCode}
		}
		return nil
	}}
}

func ensureBucket() s3op {
	return s3op{"find the bucket", func(ctx context.Context, b *blob.Store) error { return b.EnsureBucket(ctx) }}
}

// TestS3UsersLeastPrivilege drives, with each service's own MinIO user,
// every storage operation that service's code performs (all succeed), and
// operations outside its policy (each is refused with AccessDenied), on
// the real MinIO. A final video survives every refused attempt unchanged.
func TestS3UsersLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := devstacktest.Private(t, devstacktest.MinIO)
	root, err := blob.New(st.S3Config())
	if err != nil {
		t.Fatal(err)
	}
	user := func(svc, bucket string) *blob.Store {
		t.Helper()
		cfg, err := st.S3UserConfig(svc)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AccessKey == devstack.S3AccessKey || string(cfg.SecretKey) == devstack.S3SecretKey {
			t.Fatalf("%s's user is root", svc)
		}
		cfg.Bucket = bucket
		b, err := blob.New(cfg, blob.WithPartSize(blob.MinPartSize))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	must := func(k blob.Key, err error) blob.Key {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	suffix := time.Now().Format("150405.000000")
	job, other := "lp-"+strings.ReplaceAll(suffix, ".", ""), "lp-other-"+strings.ReplaceAll(suffix, ".", "")
	const tenant = "acme"
	upload, doomedUpload := blob.NewUploadID(), blob.NewUploadID()
	var (
		segVideo   = must(blob.SegmentVideo(job, 0, 1, "mp4"))
		segFrag    = must(blob.SegmentVideo(job, 1, 1, "m4s"))
		tail0      = must(blob.SegmentTail(job, 0, 1))
		tail1      = must(blob.SegmentTail(job, 1, 2))
		playlist   = must(blob.HLSPlaylist(job))
		hlsInit    = must(blob.HLSInit(job))
		hlsSeg     = must(blob.HLSSegment(job, 0))
		hlsInput   = must(blob.HLSInputSegment(job, 0))
		final      = must(blob.Final(job))
		source     = must(blob.UploadSource(tenant, upload))
		incoming   = must(blob.UploadIncoming(tenant, upload))
		derived    = must(blob.UploadDerived(tenant, upload, "96x64-24fps", "audio.pcm"))
		newDerived = must(blob.UploadDerived(tenant, upload, "96x64-24fps", "image.rgb"))
		jobPrefix  = must(blob.JobPrefix(job))
	)
	// What the other services made before: written as root.
	finalBytes := []byte("the final video, version 1")
	for k, v := range map[blob.Key][]byte{segVideo: []byte("segment 0"), segFrag: []byte("segment 1"), tail0: []byte("tail 0"), playlist: []byte("#EXTM3U"),
		hlsSeg: []byte("preview 0"), final: finalBytes, source: []byte("uploaded bytes"), incoming: []byte("put bytes"),
		derived: []byte("0123456789 samples")} {
		if _, err := root.Put(ctx, k, bytes.NewReader(v), int64(len(v)), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// doomed makes a job's or an upload's objects, one of them a multipart
	// upload left open, for a service to delete.
	doomed := func(prefix blob.Key, keys ...blob.Key) blob.Key {
		t.Helper()
		for _, k := range keys {
			if _, err := root.Put(ctx, k, strings.NewReader("doomed"), -1, blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := root.NewMultipart(ctx, keys[0], blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		return prefix
	}
	retained := doomed(must(blob.JobPrefix(job+"-retained")), must(blob.Final(job+"-retained")), must(blob.SegmentTail(job+"-retained", 0, 1)))
	deleted := doomed(must(blob.JobPrefix(job+"-deleted")), must(blob.Final(job+"-deleted")), must(blob.HLSSegment(job+"-deleted", 0)))
	lapsed := doomed(must(blob.UploadPrefix(tenant, doomedUpload)), must(blob.UploadSource(tenant, doomedUpload)),
		must(blob.UploadDerived(tenant, doomedUpload, "v", "audio.aac")))

	// Another bucket, which no service may reach.
	otherCfg := st.S3Config()
	otherCfg.Bucket = "not-spool"
	otherRoot, err := blob.New(otherCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := otherRoot.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	secret := blob.Key("secret.bin")
	if _, err := otherRoot.Put(ctx, secret, strings.NewReader("not for spool"), -1, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	inOther := func(op s3op) s3op {
		return s3op{op.name + " in bucket not-spool", op.do}
	}

	can := map[string][]s3op{
		"worker": {ensureBucket(), get(tail0), missing(tail1), get(derived), readRange(derived), put(tail1),
			put(must(blob.SegmentTail(job, 2, 1))), putParts(must(blob.SegmentVideo(job, 2, 1, "mp4"))), put(segFrag),
			multipart(must(blob.SegmentVideo(job, 3, 1, "mp4")), true)},
		"stitcher": {ensureBucket(), get(segVideo), get(segFrag), get(derived), readRange(derived), put(playlist), put(hlsInit),
			put(hlsSeg), put(hlsInput), get(hlsSeg), multipart(must(blob.Final(job+"-2")), false), stat(final), get(final),
			multipart(must(blob.Final(job+"-3")), true)},
		"dispatcher": {ensureBucket(), stat(source), get(source), stat(derived), get(derived), put(newDerived),
			putParts(must(blob.UploadDerived(tenant, upload, "96x64-24fps", "input.mp4"))), missing(must(blob.UploadDerived(tenant, upload, "x", "y"))),
			delPrefix(retained, must(blob.Final(job+"-retained"))), delPrefix(lapsed, must(blob.UploadSource(tenant, doomedUpload)))},
		"gateway": {ensureBucket(), multipart(must(blob.UploadSource(tenant, blob.NewUploadID())), false),
			multipart(must(blob.UploadSource(tenant, blob.NewUploadID())), true), presigned(http.MethodPut, incoming), stat(incoming),
			cp(incoming, source), del(incoming), get(source), presigned(http.MethodGet, source), get(derived), get(playlist),
			get(hlsSeg), stat(playlist), get(final), presigned(http.MethodGet, final), missing(must(blob.Final(job + "-none"))),
			del(must(blob.UploadSource(tenant, blob.NewUploadID()))), delPrefix(deleted, must(blob.Final(job+"-deleted")))},
	}
	// Refused: what each service's code never does, above all to what
	// another service owns.
	cannot := map[string][]s3op{
		"worker": {put(final), putParts(final), multipart(final, false), cp(segVideo, final), del(final), delPrefix(jobPrefix),
			put(playlist), put(hlsSeg), put(blob.Key(string(segVideo) + "/../../../../final.mp4")), get(final), presigned(http.MethodGet, final),
			del(tail0), del(segVideo), get(source), put(source), put(derived), list(jobPrefix), get(segVideo),
			inOther(get(secret)), inOther(put(secret)), inOther(ensureBucket())},
		"gateway": {put(segVideo), put(tail1), putParts(segFrag), put(final), multipart(final, false), put(playlist),
			put(derived), get(tail0), get(segVideo), delPrefix(must(blob.UploadPrefix(tenant, upload))),
			inOther(get(secret))},
		"stitcher": {del(final), delPrefix(jobPrefix), put(segVideo), put(tail1), put(source), put(derived), get(source),
			get(tail0), inOther(get(secret))},
		"dispatcher": {put(final), multipart(final, false), put(playlist), put(segVideo), put(tail1), get(final), get(tail0),
			presigned(http.MethodGet, final), put(source), inOther(get(secret))},
	}
	for _, svc := range devstack.S3Services {
		b, ob := user(svc, devstack.S3Bucket), user(svc, otherCfg.Bucket)
		t.Run(svc, func(t *testing.T) {
			for _, op := range can[svc] {
				if err := op.do(ctx, b); err != nil {
					t.Errorf("%s: %s: %v", svc, op.name, err)
				}
			}
			for _, op := range cannot[svc] {
				on := b
				if strings.HasSuffix(op.name, " in bucket not-spool") {
					on = ob
				}
				err := op.do(ctx, on)
				if code, ok := refused(err); ok {
					t.Logf("refused: %s: %s (%s)", svc, op.name, code)
				} else {
					t.Errorf("%s: %s: %v, want AccessDenied", svc, op.name, err)
				}
			}
		})
	}
	r, _, err := root.Get(ctx, final)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, finalBytes) {
		t.Fatalf("the final video is now %q, want %q", got, finalBytes)
	}
	for _, prefix := range []blob.Key{retained, deleted, lapsed} {
		if left, err := root.List(ctx, prefix); err != nil || len(left) > 0 {
			t.Errorf("%s: %d objects left (%v)", prefix, len(left), err)
		}
	}
	if keys, err := root.List(ctx, must(blob.JobPrefix(other))); err != nil || len(keys) != 0 {
		t.Errorf("job %s: %v %v", other, keys, err)
	}
}

// TestS3UsersOutliveARestartAndAWipe: the services' keys stay the same
// when MinIO restarts, even with its data wiped (bucket and users are made
// again), so a running service goes on with its credentials.
func TestS3UsersOutliveARestartAndAWipe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := devstacktest.Private(t, devstacktest.MinIO)
	cfg, err := st.S3UserConfig("worker")
	if err != nil {
		t.Fatal(err)
	}
	b, err := blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := blob.SegmentTail("restarted", 0, 1)
	check := func(when string) {
		t.Helper()
		if _, err := b.Put(ctx, tail, strings.NewReader("tail"), -1, blob.PutOptions{}); err != nil {
			t.Fatalf("the worker's user %s: %v", when, err)
		}
		if access, secret, _ := st.S3User("worker"); access != cfg.AccessKey || secret != string(cfg.SecretKey) {
			t.Fatalf("the worker's keys changed %s", when)
		}
	}
	check("at start")
	for _, wipe := range []bool{false, true} {
		if err := st.StopFast(devstack.PartMinIO); err != nil {
			t.Fatal(err)
		}
		if wipe {
			if err := st.Wipe(devstack.PartMinIO); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Restart(ctx, devstack.PartMinIO); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after a restart (wiped: %t)", wipe))
	}
	if _, _, err := st.S3User("janitor"); err == nil {
		t.Fatal("S3User(janitor): want an error")
	}
}
