package pgsql

import "testing"

// BenchmarkParse parses statements of the shapes sysbench and pgbench send,
// and one with CTEs and a subquery.
func BenchmarkParse(b *testing.B) {
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 4242",
		"UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 4242",
		"WITH a AS (SELECT * FROM orders WHERE total > 10), b AS (SELECT id FROM a) SELECT * FROM b JOIN customers c ON c.id = b.id WHERE c.id IN (SELECT id FROM vip)",
	} {
		b.Run(sql[:12], func(b *testing.B) {
			for b.Loop() {
				if _, err := Parse(sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
