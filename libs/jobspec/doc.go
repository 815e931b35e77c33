// Package jobspec validates a submitted JobSpec and normalises it into a Job
// the dispatcher can plan: defaults filled in, presets resolved, durations in
// frames, the prompt timeline checked.
//
// Every limit lives in limits.go and nowhere else; the README's table of
// limits is checked against it. A bad spec yields a *FieldError whose message
// names the field, the value and what is allowed.
package jobspec
