package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Cancel cancels a job: Postgres first (no segment is released after),
// then the event, then spool.control.cancel.<job> for the workers. It
// reports whether the job was live and is now cancelled.
func (d *Dispatcher) Cancel(ctx context.Context, job, reason string) (bool, error) {
	if reason == "" {
		reason = "cancelled by a client"
	}
	ev, err := eventMsg(ctx, job+".cancelled", &spoolv1.JobEvent{JobId: job, State: spoolv1.JobState_JOB_STATE_CANCELLED,
		Message: reason, ErrorCode: "cancelled"})
	if err != nil {
		return false, err
	}
	cancelled, err := d.store.CancelJob(ctx, job, reason, ev)
	if err != nil || !cancelled {
		return cancelled, err
	}
	d.wake()
	d.metrics.jobFinished(ctx, "cancelled")
	d.log.Info("job cancelled", "job", job, "reason", reason)
	return true, d.bus.PublishCancel(ctx, job)
}

// onCancelMsg handles spool.control.cancel.<job> sent by any client.
func (d *Dispatcher) onCancelMsg(ctx context.Context, m *nats.Msg) {
	job := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if _, err := d.Cancel(ctx, job, strings.TrimSpace(string(m.Data))); err != nil {
		d.log.Error("cancel", "job", job, "err", err)
	}
}

// jobView is the JSON answer of jobs.get.
type jobView struct {
	ID            string  `json:"id"`
	State         string  `json:"state"`
	Progress      float64 `json:"progress"`
	SegmentsDone  int     `json:"segments_done"`
	SegmentsTotal int     `json:"segments_total"`
	ErrorCode     string  `json:"error_code,omitempty"`
	ErrorField    string  `json:"error_field,omitempty"`
	ErrorMessage  string  `json:"error_message,omitempty"`
	FinalKey      string  `json:"final_key,omitempty"`
}

// startService registers the NATS micro service "spool" with the endpoints
// jobs.get and jobs.cancel; the request body is the job id.
func (d *Dispatcher) startService() (micro.Service, error) {
	svc, err := micro.AddService(d.bus.Conn(), micro.Config{Name: "spool", Version: "0.1.0",
		Description: "spool job control: jobs.get and jobs.cancel take a job id"})
	if err != nil {
		return nil, err
	}
	g := svc.AddGroup("jobs", micro.WithGroupQueueGroup("dispatcher"))
	jobID := func(r micro.Request) (string, bool) {
		id := strings.TrimSpace(string(r.Data()))
		if !ident.Valid(id) {
			_ = r.Error("400", "invalid_argument: job id "+ident.Rule, nil)
			return "", false
		}
		return id, true
	}
	err = errors.Join(
		g.AddEndpoint("get", micro.HandlerFunc(func(r micro.Request) {
			id, ok := jobID(r)
			if !ok {
				return
			}
			j, err := d.store.GetJob(context.Background(), id)
			if errors.Is(err, store.ErrNotFound) {
				_ = r.Error("404", "not_found: no job "+id, nil)
				return
			}
			if err != nil {
				_ = r.Error("503", "unavailable: "+err.Error(), nil)
				return
			}
			body, _ := json.Marshal(jobView{ID: j.ID, State: string(j.State), Progress: j.Progress, SegmentsDone: j.SegmentsDone,
				SegmentsTotal: j.SegmentsTotal, ErrorCode: j.ErrorCode, ErrorField: j.ErrorField, ErrorMessage: j.ErrorMessage, FinalKey: j.FinalKey})
			_ = r.Respond(body)
		})),
		g.AddEndpoint("cancel", micro.HandlerFunc(func(r micro.Request) {
			id, ok := jobID(r)
			if !ok {
				return
			}
			cancelled, err := d.Cancel(context.Background(), id, "cancelled by a client")
			if err != nil {
				_ = r.Error("503", "unavailable: "+err.Error(), nil)
				return
			}
			body, _ := json.Marshal(map[string]any{"id": id, "cancelled": cancelled})
			_ = r.Respond(body)
		})),
	)
	if err != nil {
		_ = svc.Stop()
		return nil, err
	}
	return svc, nil
}
