package devstacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// Upload records file as a ready upload of tenant, of kind ("image",
// "video" or "audio") and duration, as the gateway's POST /uploads leaves
// one, without probing it; it returns the upload's id. For tests of what
// jobs do with uploads; the uploads' own tests go through the gateway. The
// same bytes uploaded twice by a tenant are one upload, as there.
func (c Clients) Upload(t testing.TB, tenant, file, kind string, durationS float64) string {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 10)
	_, _ = rand.Read(raw)
	id := blob.UploadIDPrefix + hex.EncodeToString(raw)
	key, err := blob.UploadSource(tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Blob.Put(ctx, key, bytes.NewReader(data), int64(len(data)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Store.CreateUpload(ctx, store.Upload{ID: id, Tenant: tenant, ObjectKey: string(key)}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	u, _, err := c.Store.MarkUploadReady(ctx, tenant, id, store.UploadProbe{Kind: kind, DurationS: durationS,
		SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data)), Probe: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != id { // the tenant had these bytes already: that upload it is
		if err := c.Blob.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := c.Store.DeleteUpload(ctx, tenant, id); err != nil {
			t.Fatal(err)
		}
	}
	return u.ID
}
