// Package chaos is spool's chaos suite (`make chaos`; its short form runs
// in `make test`). Every part runs as its own OS process: a cluster of
// three nats-server processes (every stream and bucket with three
// replicas, every write fsynced: sync_interval always), Postgres, MinIO,
// two dispatchers, two stitchers, the gateway and a fleet of workers (the
// ref backend at 64 or 96 by 64 pixels and 2..4 steps, one CPU slot each).
//
// The driver uploads an image, a video and an audio track through the
// gateway and submits jobs of every kind, by HTTP (POST /generate) and by
// NATS (a JSON JobSpec on spool.jobs.submit): text to video in chain and
// independent mode, image to video, the extension of a video, and talking
// heads (ref-talk: the image speaking the audio). A client rides out a
// fault by sending the same submission again. A third of the jobs go
// first; the rest follow over the first part of the monkey's time, each
// sized as it goes by the commit rate so far, so that the workers stay
// busy until the monkey is done (see loadSizer).
//
// The monkey follows a schedule drawn from the seed (see schedule): it
// SIGKILLs workers and starts others, sends SIGTERM to some (a drain: the
// segment must finish within the worker's drain timeout or be handed back
// uncounted), SIGSTOPs one for twice the ack wait (frozen), starts a
// worker whose engine hangs in a denoise step, deaf to cancel (the stall
// watchdog must fail the attempt STALLED and the worker exit 75), kills a
// dispatcher and a stitcher and brings them back, kills a NATS node and
// restarts it (once with its store wiped), stops Postgres (fast shutdown:
// the test cluster runs without synchronous commit, so a SIGKILL could
// lose its last commits) and SIGKILLs MinIO, each restarted on the same
// address and data. The fleet restarts any process that exits by itself,
// as an orchestrator would, and the report lists such exits.
//
// Then it checks: every job succeeded; every final video decodes to
// exactly the frames of `spoolctl render --local` of its spec (framemd5);
// no frame was lost or duplicated (the stitcher's pieces tile the video
// in segment order); each segment has exactly one committed attempt, the
// only one done, whose video is the one stored; nothing is left in the
// work queues (the pool's consumer on SPOOL_SEGMENTS has nothing pending
// or unacknowledged, SPOOL_JOBS is empty); no worker lists a task in the
// spool_workers registry; drains and hangs ended as they must.
//
// # Recovery
//
// Two series are read from Postgres once the jobs have ended: segment
// commits (the segment's artifact row, written in the transaction that
// commits its first DONE) and stitch appends (the piece's row, written
// when the stitcher appends the segment to the video), both by the
// database's clock. A fault is measured on the commits, the work every
// fault but a stitcher's can hold up; a stitcher's fault on the appends,
// its own work (appends follow commits in bursts, in each job's order, so
// they make a poor measure of anything else). For a fault injected at f,
// the series' level is its mean rate over [f − 10 s, f). The fault's
// anchor is f for a process fault, and the moment the dependency is back
// (devstack's Restart returned) for NATS, Postgres and MinIO. The series
// is back at its first event e ≥ anchor such that [e, e + 5 s] holds at
// least 75% of the level's events: work restarted at e and ran at about
// its level. The recovery time is e − anchor: a clean outage of g seconds
// reads g, a fault that dents nothing the wait for the next event. A
// series with fewer than 3 events in the level window had no load to lose
// ("no load"); one never back before the run's last commit or append is
// "not recovered". The 75% and the 5 s window absorb the rate's own noise
// (a few segments per second on two cores). Faults overlap (a worker is
// killed every few seconds): a fault whose recovery saw another fault
// injected, or a dependency still away, is "overlapped", and the table
// gives the longest recovery of the faults alone beside the longest of
// all. Both series' readings are in the JSON report.
//
// A run is replayed with the same seed (`make chaos SEED=…`): the same
// jobs, the same faults in the same order on the same targets, up to the
// processes' timing (the jobs' lengths follow the measured commit rate).
package chaos
