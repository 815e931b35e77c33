package bus

import (
	"regexp"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// The protobuf runtime's JSON errors name the field but not what it
// allows; jsonHint adds that, from the JobSpec's descriptor.
var (
	enumErr    = regexp.MustCompile(`invalid value for enum field (\w+)`)
	unknownErr = regexp.MustCompile(`unknown field "([^"]*)"`)
)

// jsonHint returns "; allowed: …" for a JSON decoding error of a JobSpec:
// the values of a bad enum field, or the field names of the message where
// an unknown field appeared. It returns "" when it has nothing to add.
func jsonHint(msg string) string {
	root := (&spoolv1.JobSpec{}).ProtoReflect().Descriptor()
	if m := enumErr.FindStringSubmatch(msg); m != nil {
		for _, f := range allFields(root) {
			if (f.JSONName() == m[1] || string(f.Name()) == m[1]) && f.Enum() != nil {
				var names []string
				vals := f.Enum().Values()
				for i := range vals.Len() {
					if v := vals.Get(i); v.Number() != 0 { // 0 is UNSPECIFIED: the same as leaving it out
						names = append(names, string(v.Name()))
					}
				}
				return "; allowed: " + strings.Join(names, ", ") + ", or leave it out for the default"
			}
		}
	}
	if unknownErr.MatchString(msg) {
		// The runtime does not say in which message the field was unknown:
		// name the fields of the spec and of each message it holds.
		hint := "; JobSpec fields: " + jsonNames(root)
		fields := root.Fields()
		for i := range fields.Len() {
			if f := fields.Get(i); f.Message() != nil {
				hint += "; " + f.JSONName() + " entries: " + jsonNames(f.Message())
			}
		}
		return hint
	}
	return ""
}

// jsonNames lists md's fields by their JSON names, in declaration order.
func jsonNames(md protoreflect.MessageDescriptor) string {
	fields := md.Fields()
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = fields.Get(i).JSONName()
	}
	return strings.Join(names, ", ")
}

// allFields lists the fields of md and, depth first, of the messages they
// hold, each message once.
func allFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	seen := map[protoreflect.FullName]bool{}
	var walk func(protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := range fields.Len() {
			f := fields.Get(i)
			out = append(out, f)
			if f.Message() != nil {
				walk(f.Message())
			}
		}
	}
	walk(md)
	return out
}

// fieldInErr finds the field a JSON decoding error names.
var fieldInErr = regexp.MustCompile(`field "?([A-Za-z_][A-Za-z0-9_]*)"?`)

// MalformedField is the proto name of the JobSpec field that a decoding
// error of DecodeJobSpec names (e.g. "resolution" for an enum value that
// does not exist, "duration_s" for a string where a number goes), or
// "spec" when it names none (a syntax error, a body that is not JSON).
func MalformedField(err error) string {
	m := fieldInErr.FindStringSubmatch(strings.ReplaceAll(err.Error(), "\u00a0", " "))
	if m == nil {
		return "spec"
	}
	for _, f := range allFields((&spoolv1.JobSpec{}).ProtoReflect().Descriptor()) {
		if f.JSONName() == m[1] || string(f.Name()) == m[1] {
			return string(f.Name())
		}
	}
	return "spec"
}
