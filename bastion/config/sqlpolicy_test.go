package config_test

import (
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
)

func TestParseSQLCriteria(t *testing.T) {
	cfg, err := config.Parse("bastion.yaml", []byte(queriesHead+
		"      - {name: effects, action: deny, side_effects: true}\n"+
		"      - {name: programs, action: deny, program: true}\n"+
		`      - {name: ddl, action: deny, commands: ["ALTER * DROP *"], tables: ['"Orders"']}`+"\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.Policy.Roles["developer"].Queries
	if len(q) != 4 {
		t.Fatalf("queries = %+v", q)
	}
	if !q[1].SideEffects || q[1].Program || !q[2].Program || q[2].SideEffects || q[0].Program || q[0].SideEffects {
		t.Errorf("side_effects/program: %+v, %+v, %+v", q[0], q[1], q[2])
	}
	if q[3].Commands[0] != "ALTER * DROP *" || q[3].Tables[0] != `"Orders"` {
		t.Errorf("ddl rule = %+v", q[3])
	}
}
