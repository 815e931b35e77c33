package blob

import (
	"fmt"
	"strconv"
	"strings"
)

// Owner is whose an object is: a job's (Job), or a tenant's upload's
// (Tenant and Upload). Every object of a job lies under JobPrefix(Job),
// every object of an upload under UploadPrefix(Tenant, Upload).
type Owner struct {
	Job            string
	Tenant, Upload string
}

// OwnerOf is whose key is. It accepts exactly the keys this package's
// builders make (SegmentVideo, SegmentTail, HLSFile's, Final,
// UploadSource, UploadIncoming, UploadDerived): key is parsed into the
// parts a builder takes, built again from them and compared, so that a
// key it accepts names its owner's prefix and no other. Any other key is
// ErrInvalidKey.
func OwnerOf(key string) (Owner, error) {
	parts := strings.Split(key, "/")
	var (
		o   Owner
		k   Key
		err error
	)
	switch {
	case len(parts) >= 3 && parts[0] == "jobs":
		o.Job = parts[1]
		k, err = jobObject(o.Job, parts[2:])
	case len(parts) >= 4 && parts[0] == "uploads":
		o.Tenant, o.Upload = parts[1], parts[2]
		k, err = uploadObject(o.Tenant, o.Upload, parts[3:])
	default:
		err = ErrInvalidKey
	}
	if err != nil || string(k) != key {
		return Owner{}, fmt.Errorf("%w: %q is no object of a job or an upload", ErrInvalidKey, clip(key))
	}
	return o, nil
}

// jobObject is the key of job's object whose path under the job's prefix
// is rest, split at '/'.
func jobObject(job string, rest []string) (Key, error) {
	switch {
	case len(rest) == 1 && rest[0] == "final.mp4":
		return Final(job)
	case len(rest) == 2 && rest[0] == "hls":
		return HLSFile(job, rest[1])
	case len(rest) == 4 && rest[0] == "seg" && strings.HasPrefix(rest[2], "a"):
		idx, err1 := strconv.ParseUint(rest[1], 10, 32)
		attempt, err2 := strconv.ParseUint(rest[2][1:], 10, 32)
		if err1 != nil || err2 != nil {
			return "", ErrInvalidKey
		}
		switch rest[3] {
		case "video.mp4", "video.m4s":
			return SegmentVideo(job, uint32(idx), uint32(attempt), strings.TrimPrefix(rest[3], "video."))
		case "tail.bin":
			return SegmentTail(job, uint32(idx), uint32(attempt))
		}
	}
	return "", ErrInvalidKey
}

// uploadObject is the key of the upload's object whose path under the
// upload's prefix is rest, split at '/'.
func uploadObject(tenant, id string, rest []string) (Key, error) {
	switch {
	case len(rest) == 1 && rest[0] == "source":
		return UploadSource(tenant, id)
	case len(rest) == 1 && rest[0] == "incoming":
		return UploadIncoming(tenant, id)
	case len(rest) == 3 && rest[0] == "derived":
		return UploadDerived(tenant, id, rest[1], rest[2])
	}
	return "", ErrInvalidKey
}
