// Package blob is spool's object store, over minio-go/v7: one bucket, keys
// built only here from validated ids, streaming put and get, caller-driven
// multipart uploads that survive a crash, and presigned URLs, for its own
// endpoint or for the public one clients reach (Store.PublicPresigner).
//
// Key layout (DESIGN §8):
//
//	jobs/<job>/seg/<idx>/a<attempt>/video.mp4 | video.m4s | tail.bin
//	jobs/<job>/hls/index.m3u8 | init.mp4 | <idx>.m4s | in<k>.m4s
//	jobs/<job>/final.mp4
//	uploads/<tenant>/<upload>/source | incoming | derived/<variant>/<name>
//
// OwnerOf parses a key back into its job, or its tenant and upload.
package blob
