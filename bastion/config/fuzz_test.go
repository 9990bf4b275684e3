package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
)

// FuzzParse checks that no input makes Parse panic, that it returns a config
// or an error (never both, never neither), and that every error names the file.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullConfig,
		"data_dir: /data\nusers:\n  - name: alice\n",
		"",
		"# comment only\n",
		"---\n",
		"[1, 2]\n",
		"data_dir: /data\ncolour: blue\nusers:\n  - name: alice\n    shell: sh\n",
		"data_dir: /data\nusers:\n  - name: alice\n  - name: bob: carol\n",
		"data_dir: \"/data\nusers: []\n",
		"\tdata_dir: x\n",
		"data_dir: &d /data\nrecordings: *d\nusers: [{name: a, bogus: 1}, {name: b, bogus: 2}]\n",
		"data_dir: /d\nusers: [{name: a, roles: [r]}]\nroles:\n  r:\n    request:\n      - targets: [\"w[\"]\n        max_duration: 4x\n" +
			"        conditions:\n          networks: [10.0.0.0/33, \"::ffff:10.0.0.1\"]\n          time_windows:\n" +
			"            - {days: [mon-fri, \"\", weekend], from: \"24:00\", to: 9am, timezone: ../../etc/passwd}\n",
		"data_dir: /d\nstore: {sqlite: a, postgres: ${X}}\nnotify: {webhook: {url: \"${}\", attempts: -1}}\nusers: [{name: a}]\n",
		"data_dir: /d\ntargets: [{name: x, kind: ssh, address: \"::1\", host_key: \"ssh-rsa AAAA\"}]\nusers: [{name: a, keys: [\"\"]}]\n",
	} {
		f.Add([]byte(seed))
	}
	const file = "fuzz.yaml"
	env := fakeEnv(map[string]string{"HOOK_TOKEN": "t", "DB_USER": "u", "DB_PASSWORD": "p", "X": "x"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(file, data, env)
		if err == nil {
			if cfg == nil || cfg.Policy == nil || len(cfg.Users) == 0 {
				t.Fatalf("Parse returned no error and an incomplete config: %+v", cfg)
			}
			return
		}
		if cfg != nil {
			t.Errorf("Parse returned a config with error %v", err)
		}
		if !strings.HasPrefix(err.Error(), file) {
			t.Errorf("error %q does not start with %s", err, file)
		}
		for _, e := range leaves(err) {
			var ce *config.Error
			if !errors.As(e, &ce) {
				t.Errorf("error %q is a %T, want *config.Error", e, e)
			}
			if !strings.HasPrefix(e.Error(), file) {
				t.Errorf("error %q does not start with %s", e, file)
			}
		}
	})
}
