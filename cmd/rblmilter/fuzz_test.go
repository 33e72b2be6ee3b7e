package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig: no input panics the parser, and every rejection is a
// list of problems, never an empty or untyped error.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	files = append(files, "../../contrib/rblmilter.toml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(defaultConfigFile)
	env := testParseEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data, env)
		if err == nil {
			if cfg == nil || len(cfg.Engine.Lists) == 0 || cfg.Listen.Network == "" || cfg.Policy.Timeout <= 0 {
				t.Fatalf("accepted an incomplete config: %+v", cfg)
			}
			return
		}
		var ce *configError
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error %T %q is not a list of problems", err, err)
		}
		for _, p := range ce.Problems {
			if p == "" {
				t.Fatal("empty problem")
			}
		}
	})
}
