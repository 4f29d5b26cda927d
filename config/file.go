package config

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/service"
)

// File is the YAML file that Load read.
type File struct {
	// Path is the file's path, made absolute when it can be: messages
	// that name it may be read far from the server (an API answer).
	Path string
	// RBAC is where the file sets each of the RBAC settings that the
	// server stores, by key under rbac: "policyCSV", "policyDefault",
	// "matchMode". A key whose value is null does not set it.
	RBAC map[string]Place
}

// Place is where the file sets a setting.
type Place struct {
	// Line is the line of the setting's key.
	Line int
	// FirstLine, for a value written as a literal block (|), is the line
	// of the value's first line; 0 for any other style, where the
	// value's lines are not the file's.
	FirstLine int
}

// storedRBAC are the keys of RBAC whose values the server stores, in
// the order messages name them. DisableBuiltin is not stored: it is read
// at every start.
var storedRBAC = []string{"policyCSV", "policyDefault", "matchMode"}

// value returns the value of the stored RBAC setting key.
func (r RBAC) value(key string) string {
	switch key {
	case "policyCSV":
		return r.PolicyCSV
	case "policyDefault":
		return r.PolicyDefault
	}
	return r.MatchMode
}

// readFile describes the file at path, whose content data has already
// been decoded without error.
func readFile(path string, data []byte) (*File, error) {
	f := &File{Path: path, RBAC: map[string]Place{}}
	if abs, err := filepath.Abs(path); err == nil {
		f.Path = abs
	}
	// Which keys are set: a decode into pointers, which tells a null from
	// an empty string and sees values reached through aliases and merge
	// keys, as the decoder did.
	var probe struct {
		RBAC struct {
			PolicyCSV     *string `yaml:"policyCSV"`
			PolicyDefault *string `yaml:"policyDefault"`
			MatchMode     *string `yaml:"matchMode"`
		} `yaml:"rbac"`
	}
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, err
	}
	set := map[string]bool{
		"policyCSV":     probe.RBAC.PolicyCSV != nil,
		"policyDefault": probe.RBAC.PolicyDefault != nil,
		"matchMode":     probe.RBAC.MatchMode != nil,
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var rbac *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		_, rbac = lookup(doc.Content[0], "rbac")
	}
	for _, key := range storedRBAC {
		if !set[key] {
			continue
		}
		var p Place
		if k, v := lookup(rbac, key); k != nil {
			p.Line = k.Line
			if v.Kind == yaml.ScalarNode && v.Style&yaml.LiteralStyle != 0 {
				p.FirstLine = v.Line + 1 // the block starts on the line after its indicator
			}
		}
		f.RBAC[key] = p
	}
	return f, nil
}

// lookup finds key in the mapping m as the decoder does: following
// aliases, a key written in m before one brought in by a merge key (<<).
// It returns nil, nil when m is not a mapping or has no such key.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	return lookupDepth(m, key, 0)
}

func lookupDepth(m *yaml.Node, key string, depth int) (k, v *yaml.Node) {
	for m != nil && m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	if m == nil || m.Kind != yaml.MappingNode || depth > 16 {
		return nil, nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, vn := m.Content[i], m.Content[i+1]
		for vn.Kind == yaml.AliasNode && vn.Alias != nil {
			vn = vn.Alias
		}
		switch {
		case kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge":
			if vn.Kind == yaml.SequenceNode {
				merges = append(merges, vn.Content...)
			} else {
				merges = append(merges, vn)
			}
		case kn.Kind == yaml.ScalarNode && kn.Value == key:
			return kn, vn
		}
	}
	for _, mm := range merges {
		if k, v := lookupDepth(mm, key, depth+1); k != nil {
			return k, v
		}
	}
	return nil, nil
}

// FileRBAC is what the file sets of the RBAC settings, in the service's
// terms: the server applies these at every start and keeps the API from
// changing them. Empty without a file, or when it sets none of them.
func (c Config) FileRBAC() service.FileRBAC {
	if c.File == nil {
		return service.FileRBAC{}
	}
	out := service.FileRBAC{File: c.File.Path}
	for _, key := range storedRBAC {
		p, ok := c.File.RBAC[key]
		if !ok {
			continue
		}
		out.Settings = append(out.Settings, service.FileSetting{
			Field: key, Value: c.RBAC.value(key), Line: p.Line, FirstLine: p.FirstLine,
		})
	}
	return out
}
