package jobspec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spoolvideo/spool/libs/ident"
)

// Pool is a GPU pool and the models it serves: every worker of the pool
// must have loaded each of them, since any of its workers may take any of
// its tasks.
type Pool struct {
	Name   string
	Models []string
}

// Serves reports whether the pool serves model.
func (p Pool) Serves(model string) bool { return slices.Contains(p.Models, model) }

// Pools are the pools a dispatcher feeds, in the order of their
// declaration: a job that names a model and no pool goes to the first pool
// that serves the model.
type Pools []Pool

// PoolsSyntax says in words what ParsePools accepts.
const PoolsSyntax = "pool:model,model;pool:model, e.g. default:ref,sim;gpu-h100:skyreels-v2-df-14b-720p"

// ParsePools reads pool declarations, "pool:model,model;pool:model".
// Spaces around names are ignored. Every pool lists at least one model;
// pool names follow ident.Rule and are unique; model names follow
// ValidModelName. Whether the catalog has the models is Catalog.WithPools'
// question.
func ParsePools(s string) (Pools, error) {
	var out Pools
	for _, decl := range strings.Split(s, ";") {
		if strings.TrimSpace(decl) == "" {
			continue
		}
		name, list, ok := strings.Cut(decl, ":")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("pools: %q declares no models; want %s", strings.TrimSpace(decl), PoolsSyntax)
		}
		if !ident.Valid(name) {
			return nil, fmt.Errorf("pools: pool name %q: want %s", name, ident.Rule)
		}
		if slices.ContainsFunc(out, func(p Pool) bool { return p.Name == name }) {
			return nil, fmt.Errorf("pools: pool %s declared twice", name)
		}
		p := Pool{Name: name}
		for _, m := range strings.Split(list, ",") {
			m = strings.TrimSpace(m)
			switch {
			case m == "" && strings.TrimSpace(list) == "":
				return nil, fmt.Errorf("pools: pool %s declares no models; want %s", name, PoolsSyntax)
			case !ValidModelName(m):
				return nil, fmt.Errorf("pools: pool %s: model name %q: want %s", name, m, modelNameRule)
			case p.Serves(m):
				return nil, fmt.Errorf("pools: pool %s lists model %s twice", name, m)
			}
			p.Models = append(p.Models, m)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pools: none declared; want %s", PoolsSyntax)
	}
	return out, nil
}

// Decode lets envconfig read Pools from a variable (ParsePools).
func (p *Pools) Decode(s string) error {
	v, err := ParsePools(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// String is the declaration ParsePools reads back.
func (p Pools) String() string {
	parts := make([]string, len(p))
	for i, pool := range p {
		parts[i] = pool.Name + ":" + strings.Join(pool.Models, ",")
	}
	return strings.Join(parts, ";")
}

// Names lists the pools in declaration order.
func (p Pools) Names() []string {
	out := make([]string, len(p))
	for i, pool := range p {
		out[i] = pool.Name
	}
	return out
}

// Get returns the pool named name.
func (p Pools) Get(name string) (Pool, bool) {
	i := slices.IndexFunc(p, func(pool Pool) bool { return pool.Name == name })
	if i < 0 {
		return Pool{}, false
	}
	return p[i], true
}

// Serving lists, in declaration order, the pools that serve model.
func (p Pools) Serving(model string) []string {
	var out []string
	for _, pool := range p {
		if pool.Serves(model) {
			out = append(out, pool.Name)
		}
	}
	return out
}

// Served lists, sorted and once each, the models some pool serves.
func (p Pools) Served() []string {
	var out []string
	for _, pool := range p {
		for _, m := range pool.Models {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out
}
