package jobspec_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/jobspec"
)

func TestParsePools(t *testing.T) {
	cases := []struct {
		in   string
		want jobspec.Pools
		err  string
	}{
		{"default:ref,sim", jobspec.Pools{{"default", []string{"ref", "sim"}}}, ""},
		{" default : ref , sim ;gpu-h100:skyreels-v2-df-14b-720p;", jobspec.Pools{{"default", []string{"ref", "sim"}},
			{"gpu-h100", []string{"skyreels-v2-df-14b-720p"}}}, ""},
		{"default", nil, `"default" declares no models`},
		{"default:", nil, "pool default declares no models"},
		{"default:ref,", nil, `model name ""`},
		{"Default:ref", nil, `pool name "Default"`},
		{"a:ref;a:sim", nil, "pool a declared twice"},
		{"a:ref,ref", nil, "lists model ref twice"},
		{"a:Ref", nil, `model name "Ref"`},
		{"", nil, "none declared"},
		{" ; ", nil, "none declared"},
	}
	for _, c := range cases {
		got, err := jobspec.ParsePools(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %v, want an error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	p, _ := jobspec.ParsePools("default:ref,sim;gpu-a:skyreels-v2-df-1.3b-540p,ref")
	if p.String() != "default:ref,sim;gpu-a:skyreels-v2-df-1.3b-540p,ref" || !reflect.DeepEqual(p.Serving("ref"), []string{"default", "gpu-a"}) ||
		!reflect.DeepEqual(p.Served(), []string{"ref", "sim", "skyreels-v2-df-1.3b-540p"}) {
		t.Fatalf("%s %v %v", p, p.Serving("ref"), p.Served())
	}
	var d jobspec.Pools
	if err := d.Decode("x:ref"); err != nil || d.String() != "x:ref" {
		t.Fatalf("Decode: %v %v", d, err)
	}
}

// FuzzParsePools: what parses prints back to a declaration that parses to
// the same pools.
func FuzzParsePools(f *testing.F) {
	for _, s := range []string{"default:ref,sim", "a:b;c:d,e", "x:skyreels-v2-df-1.3b-540p;", ";;", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := jobspec.ParsePools(s)
		if err != nil {
			return
		}
		again, err := jobspec.ParsePools(p.String())
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("%q → %q → %+v, %v", s, p.String(), again, err)
		}
		for _, pool := range p {
			if len(pool.Models) == 0 {
				t.Fatalf("pool %s with no models", pool.Name)
			}
		}
	})
}
