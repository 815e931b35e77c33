package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// retryClosing is the Retry-After, in seconds, of a delete refused while
// the stitcher still closes the job's video.
const retryClosing = 2

// deleteJob deletes a finished job's objects (its video, preview, segments
// and tails: everything under jobs/<job>/) and marks it deleted. The job
// keeps its state, and its segments, attempts and artifacts stay as its
// lineage. A job that has not ended is 409: cancel it first. Deleting again
// answers as the first time did.
func (g *Gateway) deleteJob(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	j, err := g.store.GetJob(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	if !j.State.Terminal() {
		writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition", Message: fmt.Sprintf(
			"job %s is %s: cancel it first (POST /jobs/%s/cancel), then delete it once it has ended", id, j.State, id)})
		return
	}
	finished, err := g.store.JobFinished(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	if !finished {
		w.Header().Set("Retry-After", strconv.Itoa(retryClosing))
		writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition", Message: fmt.Sprintf(
			"job %s is %s and its video is still being closed: delete it again in a few seconds", id, j.State)})
		return
	}
	prefix, err := blob.JobPrefix(id)
	if err != nil {
		fail(w, err)
		return
	}
	final, _ := blob.Final(id)
	n, err := g.blob.DeletePrefix(r.Context(), prefix, final)
	if err != nil {
		fail(w, err)
		return
	}
	at, err := g.store.MarkJobDeleted(r.Context(), id)
	if errors.Is(err, store.ErrConflict) {
		writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition", Message: err.Error()})
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	g.log.Info("job deleted", "job", id, "objects", n)
	g.audit(r.Context(), r, j.Tenant, actionJobDelete, id, map[string]any{"objects": n})
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "state": j.State, "deleted_at": at.UTC().Format(time.RFC3339Nano),
		"objects_deleted": n, "status_url": "/status/" + id})
}

// gone answers 410 deleted for a file of a deleted job.
func gone(w http.ResponseWriter, j store.Job, what string) {
	writeError(w, http.StatusGone, "deleted", fmt.Sprintf("job %s's %s was deleted at %s", j.ID, what, j.DeletedAt.UTC().Format(time.RFC3339)))
}
