// Package heddle is the Go SDK for Heddle step plugins (docs/plugins.md, "Go").
//
// A plugin is a Go program whose main calls Main with its steps. The same declarations
// produce the manifest (`go run . manifest`) and serve the plugin protocol on the socket the
// worker names, so the compiler and the process can never disagree. Inputs are read
// zero-copy from shared memory: the arrays a step receives point into the mapped segment and
// are valid only until the step returns.
package heddle

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// Plugin is a plugin package: its Heddle name and its steps by module import path.
type Plugin struct {
	// Package is the Heddle package name, the first part of every import path ("geo").
	Package string
	// Modules maps an import path ("geo/distance") to the steps it declares.
	Modules map[string][]Step
	// Build and Entry override the manifest's defaults: `go build` into the worker's build
	// cache, then run the built binary ("{binary}" stands for its path).
	Build []string
	Entry []string
}

// DefaultBuild is how the worker builds a Go plugin on first use (docs/plugins.md).
var DefaultBuild = []string{"go", "build", "-o", "{binary}", "."}

// Manifest is the plugin's manifest (docs/manifest.md) as JSON.
func (p Plugin) Manifest() ([]byte, error) {
	if p.Package == "" {
		return nil, fmt.Errorf("the plugin has no Package name")
	}
	modules := map[string]any{}
	for path, steps := range p.Modules {
		declared := map[string]any{}
		for _, s := range steps {
			m, err := s.manifest()
			if err != nil {
				return nil, err
			}
			declared[s.Name] = m
		}
		modules[path] = map[string]any{"resources": map[string]any{}, "steps": declared}
	}
	build, entry := p.Build, p.Entry
	if build == nil {
		build = DefaultBuild
	}
	if entry == nil {
		entry = []string{"{binary}"}
	}
	return json.MarshalIndent(map[string]any{
		"heddle_manifest": 1, "package": p.Package, "runtime": "go",
		"build": build, "entry": entry, "modules": modules,
	}, "", "  ")
}

// wireSteps are the steps by wire name `<import path>.<step>`.
func (p Plugin) wireSteps() map[string]Step {
	out := map[string]Step{}
	for path, steps := range p.Modules {
		for _, s := range steps {
			out[path+"."+s.Name] = s
		}
	}
	return out
}

// Main is a plugin's main: `manifest [--out FILE]` writes the manifest; without arguments
// it serves the plugin protocol (the worker starts it so). It never returns.
func Main(p Plugin) {
	os.Exit(run(p, os.Args[1:]))
}

func run(p Plugin, args []string) int {
	manifest, err := p.Manifest()
	if err != nil {
		fmt.Fprintf(os.Stderr, "heddle-sdk-go: %v\n", err)
		return 1
	}
	switch {
	case len(args) == 0:
		if err := serve(p.wireSteps(), string(manifest)); err != nil {
			fmt.Fprintf(os.Stderr, "heddle-sdk-go: %v\n", err)
			return 1
		}
		return 0
	case args[0] == "manifest" && len(args) == 1:
		fmt.Println(string(manifest))
		return 0
	case args[0] == "manifest" && len(args) == 3 && args[1] == "--out":
		if err := os.WriteFile(args[2], append(manifest, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "heddle-sdk-go: %v\n", err)
			return 1
		}
		return 0
	}
	names := make([]string, 0, len(p.Modules))
	for path := range p.Modules {
		names = append(names, path)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: %s [manifest [--out FILE]]\n(plugin %s: modules %v)\n", os.Args[0], p.Package, names)
	return 2
}
