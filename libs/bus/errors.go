package bus

import "errors"

// Sentinel errors of the package; every error the package returns for one of
// these causes wraps it, so callers test with errors.Is.
var (
	// ErrInvalidToken: a subject token (pool, job) breaks ident.Rule.
	ErrInvalidToken = errors.New("invalid subject token")

	// ErrInvalidOption: a connect or topology option is out of range.
	ErrInvalidOption = errors.New("invalid option")

	// ErrMissingMsgID: a JetStream publish without a Nats-Msg-Id, which
	// would not be deduplicated.
	ErrMissingMsgID = errors.New("missing message id")

	// ErrMalformedJob: a submitted job spec that cannot be decoded.
	ErrMalformedJob = errors.New("malformed job spec")

	// ErrNoMessage: FetchOne found nothing in time.
	ErrNoMessage = errors.New("no message")
)
