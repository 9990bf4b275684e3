#!/usr/bin/env bash
# install-deps.sh installs what Bastion's integration tests, benchmarks and
# demo run against: the peer servers and clients (Debian packages) and two Go
# tools. It checks first and installs only what is missing, so it is fast and
# silent when everything is there; it prints one line per thing it installs.
#
# Run it as root on Debian 12 with Go installed. Packages are installed with
# a policy-rc.d that keeps Debian from starting their services: the tests
# start their own servers on free ports, and servers already running on the
# standard ports are left alone.
set -euo pipefail

readonly GO_TOOLS=(
	# binary  module@version
	"versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	"staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2"
)

log=$(mktemp -t install-deps.XXXXXX)
policy=/usr/sbin/policy-rc.d
policy_backup=""     # a copy of the policy-rc.d we replaced, if there was one
restore_policy=false # whether we wrote policy-rc.d

cleanup() {
	if $restore_policy; then
		if [[ -n $policy_backup ]]; then
			mv -f "$policy_backup" "$policy"
		else
			rm -f "$policy"
		fi
	fi
	rm -f "$log"
}
trap cleanup EXIT

# fail prints a message and the tail of the log, and exits.
fail() {
	echo "install-deps: $*" >&2
	tail -n 40 "$log" >&2
	exit 1
}

# have reports whether a program exists: an absolute path, a glob of absolute
# paths, or a name on PATH.
have() {
	if [[ $1 == /* ]]; then
		compgen -G "$1" >/dev/null
	else
		command -v "$1" >/dev/null 2>&1
	fi
}

# Debian packages and the programs that show each is installed.
missing=()
need() {
	local pkg=$1 program
	shift
	for program in "$@"; do
		if ! have "$program"; then
			missing+=("$pkg")
			return
		fi
	done
}
need gcc gcc       # cgo: mattn/go-sqlite3
need libc6-dev /usr/include/stdio.h
need openssh-server /usr/sbin/sshd
need openssh-client ssh scp sftp
need rsync rsync
need postgresql '/usr/lib/postgresql/*/bin/initdb' '/usr/lib/postgresql/*/bin/pg_ctl' psql pgbench
need mariadb-server /usr/sbin/mariadbd mariadb-install-db
need mariadb-client mariadb mariadb-admin
need asciinema asciinema
need sysbench sysbench
need pgbouncer /usr/sbin/pgbouncer
need haproxy /usr/sbin/haproxy
need s3cmd s3cmd
need tmux tmux

if ((${#missing[@]} > 0)); then
	[[ $EUID -eq 0 ]] || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
	# Exit status 101 of policy-rc.d means "action forbidden": postinst
	# scripts then neither start nor restart services.
	if [[ -e $policy ]]; then
		policy_backup=$(mktemp -p /usr/sbin .policy-rc.d.XXXXXX)
		cp -p "$policy" "$policy_backup"
	fi
	restore_policy=true
	printf '#!/bin/sh\n# written by install-deps.sh for the duration of an install\nexit 101\n' >"$policy"
	chmod 755 "$policy"

	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 update >>"$log" 2>&1 || fail "apt-get update failed"
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 ||
		fail "apt-get install ${missing[*]} failed"
	for pkg in "${missing[@]}"; do
		echo "installed $pkg ($(dpkg-query -W -f='${Version}' "$pkg"))"
	done
fi

# Go tools go to the first GOPATH entry's bin, where the test harness looks.
go=$(command -v go || echo /usr/local/go/bin/go)
[[ -x $go ]] || { echo "install-deps: go not found: install Go first (https://go.dev/dl/)" >&2; exit 1; }
gobin=$("$go" env GOPATH)
gobin=${gobin%%:*}/bin
for tool in "${GO_TOOLS[@]}"; do
	read -r name module <<<"$tool"
	want=${module##*@}
	# Installed already if the binary in GOPATH/bin or on PATH is that version
	# (go version -m reads the module version built into a Go binary).
	installed=false
	for bin in "$gobin/$name" "$(command -v "$name" || true)"; do
		if [[ -x $bin ]] && "$go" version -m "$bin" 2>/dev/null |
			awk -v want="$want" '$1 == "mod" && $3 == want { found = 1 } END { exit !found }'; then
			installed=true
			break
		fi
	done
	$installed && continue
	GOBIN=$gobin "$go" install "$module" >>"$log" 2>&1 || fail "go install $module failed"
	note=""
	[[ :$PATH: == *":$gobin:"* ]] || note=" (not on PATH)"
	echo "installed $name $want into $gobin$note"
done
