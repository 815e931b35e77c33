package stitcher

import (
	"context"
	"errors"
	"fmt"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// close ends the stitch of job jb, which ended without a final video (it
// was cancelled or failed): its playlist, with every piece appended, gets
// EXT-X-ENDLIST so that players stop waiting for more, and its multipart
// upload is aborted. It takes the job's lease first (ErrLeased while
// another stitcher holds it: that one, or a later sweep, closes it). A job
// with no stitch, or one closed already, changes nothing. It returns the
// pieces the playlist holds.
func (s *Stitcher) close(ctx context.Context, jb store.Job) (int, error) {
	st, err := s.store.GetStitch(ctx, jb.ID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil // nothing was appended: no playlist
	}
	if err != nil || st.Finalized || st.Closed {
		return st.Appended, err
	}
	if _, err := s.store.OpenStitch(ctx, jb.ID, s.cfg.ID, s.cfg.Lease, func() (string, error) {
		return "", fmt.Errorf("stitcher: %s: the stitch row is gone", jb.ID)
	}); err != nil {
		return 0, err
	}
	pieces, err := s.store.ListPieces(ctx, jb.ID, 0)
	if err != nil {
		return 0, err
	}
	if len(pieces) > 0 {
		if err := s.writePlaylist(ctx, jb, pieces, true); err != nil {
			return 0, err
		}
	}
	key, err := blob.Final(jb.ID)
	if err != nil {
		return 0, err
	}
	if err := s.blob.AbortMultipart(ctx, key, st.UploadID); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return 0, err
	}
	if err := s.store.CloseStitch(ctx, jb.ID, s.cfg.ID); err != nil {
		return 0, err
	}
	s.log.Info("stitch closed", "job", jb.ID, "state", jb.State, "pieces", len(pieces))
	return len(pieces), nil
}
