// Package blob is spool's object store, over minio-go/v7: one bucket, keys
// built only here from validated ids, streaming put and get, caller-driven
// multipart uploads that survive a crash, and presigned URLs, for its own
// endpoint or for the public one clients reach (Store.PublicPresigner).
//
// Key layout (DESIGN §8):
//
//	jobs/<job>/seg/<idx>/a<attempt>/video.mp4 | video.m4s | tail.bin
//	jobs/<job>/hls/index.m3u8, jobs/<job>/hls/init.mp4, jobs/<job>/hls/<idx>.m4s
//	jobs/<job>/final.mp4
//	jobs/<job>/in/<name>
package blob
