package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// runSetup times `ssh … true` -n times each way, round robin.
func runSetup(ctx context.Context, b *bench, o options) error {
	fmt.Printf("### Session setup: `ssh … true`, %d times each way\n\n", o.n)
	for _, r := range routes {
		fmt.Printf("- %s: `%s`\n", r, b.display(r, nil, "true"))
	}
	fmt.Println()
	times := map[route][]time.Duration{}
	for i := 0; i < o.n; i++ {
		for _, r := range routes {
			start := time.Now()
			if _, err := b.sshRun(ctx, r, nil, "true"); err != nil {
				return err
			}
			times[r] = append(times[r], time.Since(start))
		}
	}
	jump, dir := sorted(times[jumpHost]), sorted(times[direct])
	fmt.Print("| path | p50 | p90 | mean | p50 vs jump host | p90 vs jump host | p50 vs direct |\n|---|---|---|---|---|---|---|\n")
	for _, r := range routes {
		d := sorted(times[r])
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", r, ms(pct(d, 50)), ms(pct(d, 90)), ms(mean(d)),
			ratio(float64(pct(d, 50)), float64(pct(jump, 50))), ratio(float64(pct(d, 90)), float64(pct(jump, 90))),
			ratio(float64(pct(d, 50)), float64(pct(dir, 50))))
	}
	bst := sorted(times[viaBastion])
	fmt.Printf("\nGoal Bastion ≤ 1.0× the jump host: **%s** at p50 (%s), **%s** at p90 (%s).\n",
		verdict(pct(bst, 50) <= pct(jump, 50)), ratio(float64(pct(bst, 50)), float64(pct(jump, 50))),
		verdict(pct(bst, 90) <= pct(jump, 90)), ratio(float64(pct(bst, 90)), float64(pct(jump, 90))))
	fmt.Fprintf(os.Stderr, "setup: done\n")
	return nil
}
