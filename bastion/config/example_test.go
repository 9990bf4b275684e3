package config

import (
	"testing"
)

// TestExampleConfig keeps configs/bastion.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	env := map[string]string{"BASTION_WEBHOOK_URL": "https://hooks.example.com/x", "ORDERS_DB_PASSWORD": "s3cret"}
	t.Setenv("BASTION_WEBHOOK_URL", env["BASTION_WEBHOOK_URL"])
	t.Setenv("ORDERS_DB_PASSWORD", env["ORDERS_DB_PASSWORD"])
	cfg, err := Load("../../configs/bastion.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Targets["orders"].Password; got != "s3cret" {
		t.Errorf("orders password = %q, want it from the environment", got)
	}
	if len(cfg.Policy.Roles["developer"].Requestable) != 2 || cfg.Notify.Webhook == nil {
		t.Errorf("example config lost rules or the webhook: %+v", cfg.Policy.Roles["developer"])
	}
}
