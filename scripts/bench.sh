#!/usr/bin/env bash
# Runs Bastion's benchmarks; each prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## Control plane ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/controlplane -n "${BENCH_N:-50}"
echo
echo "## SSH proxy ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/sshproxy -size "${BENCH_SSH_SIZE:-1GiB}" -n "${BENCH_SSH_N:-20}" -sessions "${BENCH_SSH_SESSIONS:-1000}"
echo
echo "## PostgreSQL proxy ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/postgres -time "${BENCH_PG_TIME:-15}" -rounds "${BENCH_PG_ROUNDS:-3}"
echo
echo "## MySQL proxy ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/mysql -time "${BENCH_MYSQL_TIME:-20}" -rounds "${BENCH_MYSQL_ROUNDS:-3}"
echo
echo "## Recordings in S3 ($(date -u +%Y-%m-%d), $(nproc) cores)"
go run ./bench/recording -sessions "${BENCH_REC_SESSIONS:-200}" -duration "${BENCH_REC_DURATION:-30s}" -size "${BENCH_REC_SIZE:-64MiB}"
