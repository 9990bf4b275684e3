#!/usr/bin/env bash
# Runs Bastion's benchmarks; each prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## Control plane ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/controlplane -n "${BENCH_N:-50}"
echo
echo "## SSH proxy ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/sshproxy -size "${BENCH_SSH_SIZE:-1GiB}" -n "${BENCH_SSH_N:-20}" -sessions "${BENCH_SSH_SESSIONS:-1000}"
