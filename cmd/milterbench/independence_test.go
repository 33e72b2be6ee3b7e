package main

import (
	"go/build"
	"strings"
	"testing"
)

// milterbench measures any milter from outside, so it must not be built
// from what it measures: neither it nor the project packages it uses
// (internal/socketspec) may import rbl or milter.
func TestImportsNeitherRblNorMilter(t *testing.T) {
	const module = "github.com/rblmilter/rblmilter/"
	seen := map[string]bool{}
	var walk func(path, dir string, tests bool)
	walk = func(path, dir string, tests bool) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.Import(path, dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		imports := pkg.Imports
		if tests {
			imports = append(append(imports, pkg.TestImports...), pkg.XTestImports...)
		}
		for _, imp := range imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			switch rel := strings.TrimPrefix(imp, module); {
			case rel == "rbl" || strings.HasPrefix(rel, "rbl/") || rel == "milter" || strings.HasPrefix(rel, "milter/"):
				t.Errorf("%s imports %s", path, imp)
			default:
				walk(imp, pkg.Dir, false)
			}
		}
	}
	walk(".", ".", true)
	if len(seen) < 2 {
		t.Fatalf("walked only %v", seen)
	}
}
