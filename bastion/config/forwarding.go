package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/bastionhq/bastion/bastion/policy"
)

// rawDestinations is `local:` or `remote:` of a role's forwarding: a bool
// (true: any destination outside what Bastion always refuses), or a list
// of "host:port", "address:port" or "network/bits:port" entries.
type rawDestinations struct {
	any  bool
	list []string
	bad  string // what the file said instead, for the error
}

func (d *rawDestinations) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		return n.Decode(&d.any)
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil
	case n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				d.bad = "a list holding something other than host:port strings"
				return nil
			}
			d.list = append(d.list, item.Value)
		}
		if len(d.list) == 0 {
			d.bad = "an empty list (write false to allow none)"
		}
		return nil
	default:
		d.bad = fmt.Sprintf("%q", n.Value)
		return nil
	}
}

// forwarding converts a role's forwarding section.
func (v *validator) forwarding(field string, f rawForwarding) policy.Forwarding {
	return policy.Forwarding{
		Local:  v.destinations(field+".local", f.Local),
		Remote: v.destinations(field+".remote", f.Remote),
		Agent:  f.Agent,
		X11:    f.X11,
	}
}

// destinations converts `local:` or `remote:`, naming each bad entry.
func (v *validator) destinations(field string, d rawDestinations) policy.Destinations {
	if d.bad != "" {
		v.errorf(field, "want true, false or a list of destinations like \"db.internal:5432\" or \"10.1.2.0/24:443\", not %s", d.bad)
		return policy.Destinations{}
	}
	out := policy.Destinations{Any: d.any}
	for i, s := range d.list {
		e, err := policy.ParseDestination(s)
		if err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", field, i), "destination %q: %v", s, err)
			continue
		}
		out.List = append(out.List, e)
	}
	return out
}
