#!/bin/bash
# Boot script (EC2 user data) of an lb-failover load balancer.
#
# A load balancer gets a new IP every time it starts, and nothing pushes it a list until the
# controller's next run: so it pulls the current list from Parameter Store and applies it with
# the same apply-backends.sh the SSM document runs, and serves the current web pool at once.
#
# Use the rendered form as user data: `python infra/render_document.py user-data` embeds
# haproxy.cfg, apply-backends.sh and read-parameter.py (LBSIDE_FILES_DIR points at them). Run as-is,
# it takes them from its own directory.
#
# Images (infra/DEPLOY.md pins both): Amazon Linux 2023 and Ubuntu 24.04 LTS. It asks the package
# manager for haproxy and nothing else:
# - AL2023 ships curl-minimal, which provides `curl`; `dnf install curl` conflicts with it and
#   fails (amazon-linux-2023 issues #150 and #416), which under `set -e` stopped the boot.
# - Ubuntu 24.04 has no `awscli` deb (the AWS CLI is a snap there), so the parameter is read by
#   read-parameter.py with python3's standard library, which both images ship (cloud-init, which
#   runs this script, is written in it).
# - HAProxy older than 2.6 is refused before anything is configured or started: master-worker
#   reloads (-Ws, SIGUSR2), `option idle-close-on-response` and the Runtime API's dynamic
#   servers are 2.6 features the configuration and the apply script rely on.
#
# Inputs (environment, all optional):
#   LBF_PARAMETER_PREFIX  Parameter Store prefix; default /lbf/<value of the lbf:cluster tag>,
#                         read from instance metadata (the launch template must allow tags in
#                         metadata: InstanceMetadataTags=enabled)
#   LBSIDE_FILES_DIR         where haproxy.cfg, apply-backends.sh and read-parameter.py are
#   LBSIDE_ROOT              prefix of every path written (tests/infra/test_user_data.py); empty on an LB
#
# The instance role needs ssm:GetParameter on <prefix>/backends (and the SSM Agent's usual
# permissions, AmazonSSMManagedInstanceCore, for the pushed commands).
set -euo pipefail

files_dir="${LBSIDE_FILES_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
prefix="${LBF_PARAMETER_PREFIX:-}"
root="${LBSIDE_ROOT:-}"

readonly APPLY=/usr/local/sbin/lbf-apply-backends
readonly CONFIG=/etc/haproxy/haproxy.cfg
readonly BACKENDS=/etc/haproxy/backends.cfg
readonly DROP_IN=/etc/systemd/system/haproxy.service.d/lb-failover.conf
readonly MINIMUM_MINOR=6 # of HAProxy 2.x
readonly APT_LOCK_TIMEOUT=600 # seconds

log() { printf 'lbf-user-data: %s\n' "$*"; }
die() {
	printf 'lbf-user-data: %s\n' "$*" >&2
	exit 1
}

# Instance metadata, IMDSv2 (a session token first).
imds() {
	local token
	token=$(curl -fsS -m 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
		http://169.254.169.254/latest/api/token)
	curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}

install_packages() {
	if command -v haproxy >/dev/null; then
		return 0
	fi
	if command -v dnf >/dev/null; then
		dnf install -y -q haproxy
	elif command -v apt-get >/dev/null; then
		# Ubuntu's first boot runs apt itself (apt-daily, unattended-upgrades, cloud-init's own
		# steps): apt-get fails at once on a held lock, which under `set -e` ends the boot.
		# Wait for it instead, bounded.
		apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" update -qq
		DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" \
			install -y -qq haproxy
	else
		die "neither dnf nor apt-get found: use an image infra/DEPLOY.md names"
	fi
	command -v haproxy >/dev/null || die "haproxy could not be installed"
}

# `haproxy -v` starts "HAProxy version 2.8.5-1ubuntu3 2024/..." on Debian, Ubuntu and Fedora alike.
require_haproxy_version() {
	local output first major minor
	output=$(haproxy -v 2>&1) || die "haproxy -v failed: $output"
	first=${output%%$'\n'*}
	[[ $first =~ [Vv]ersion\ ([0-9]+)\.([0-9]+) ]] || die "cannot read HAProxy's version from: $first"
	major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
	if ((major < 2 || (major == 2 && minor < MINIMUM_MINOR))); then
		die "HAProxy $major.$minor is installed, lb-failover needs 2.$MINIMUM_MINOR or later;" \
			"nothing was configured or started. Launch an image whose haproxy package is" \
			"2.$MINIMUM_MINOR or later (infra/DEPLOY.md, \"Images\")."
	fi
	log "HAProxy $major.$minor"
}

install_files() {
	local haproxy_bin check
	haproxy_bin=$(command -v haproxy)
	install -d -m 0755 "$root/usr/local/sbin" "$root/etc/haproxy" "$root${DROP_IN%/*}"
	install -m 0755 "$files_dir/apply-backends.sh" "$root$APPLY"
	install -m 0644 "$files_dir/haproxy.cfg" "$root$CONFIG"
	# HAProxy loads the backend section as a second file; until a list is applied it is a
	# backend without servers, so /health answers 503 and the controller sees "cannot serve".
	if [[ ! -f $root$BACKENDS ]]; then
		printf '# lbf-checksum none\nbackend web\n' >"$root$BACKENDS"
	fi
	# The distributions' units check, start and reload haproxy.cfg alone (Debian and Ubuntu:
	# CONFIG, EXTRAOPTS; Fedora and Amazon Linux: CONFIG, CFGDIR, OPTIONS), and the Fedora-family
	# and Ubuntu units check it before starting (ExecStartPre). The drop-in replaces every such
	# line with one that names the same two files, so the pre-start check still runs, and checks
	# exactly what ExecStart loads.
	check="$haproxy_bin -c -q -f $CONFIG -f $BACKENDS"
	{
		printf '# Written by lb-failover'"'"'s user data: haproxy.cfg and the backend section that\n'
		printf '# apply-backends.sh writes, in every line that checks, starts or reloads HAProxy.\n'
		printf '[Service]\n'
		printf 'RuntimeDirectory=haproxy\n'
		printf 'ExecStartPre=\n'
		printf 'ExecStartPre=%s\n' "$check"
		printf 'ExecStart=\n'
		printf 'ExecStart=%s -Ws -f %s -f %s -p /run/haproxy.pid -S /run/haproxy-master.sock\n' \
			"$haproxy_bin" "$CONFIG" "$BACKENDS"
		printf 'ExecReload=\n'
		printf 'ExecReload=%s\n' "$check"
		# $MAINPID is systemd's, expanded when the unit runs.
		printf '%s\n' "ExecReload=/bin/kill -USR2 \$MAINPID"
		# When a worker fails (a configuration that passes `haproxy -c` but cannot start), the
		# master exits, HAProxy's default, which its documentation pairs with this: systemd
		# starts it again, with whatever file is in place (update-config.sh's rollback puts the
		# previous one back). Spaced so that five tries do not hit systemd's start limit.
		printf 'Restart=on-failure\n'
		printf 'RestartSec=3s\n'
	} >"$root$DROP_IN"
	systemctl daemon-reload
	systemctl enable haproxy
	systemctl restart haproxy
}

parameter_prefix() {
	local cluster
	if [[ -n $prefix ]]; then
		printf '%s' "$prefix"
		return 0
	fi
	cluster=$(imds meta-data/tags/instance/lbf:cluster) || {
		log "no LBF_PARAMETER_PREFIX and no lbf:cluster tag in instance metadata"
		return 1
	}
	printf '/lbf/%s' "$cluster"
}

# Prints the list; exit 3 when the parameter does not exist yet (a new cluster: the controller
# pushes a list to this LB on its next run). Retries cover a role that is not usable yet.
fetch_backends() {
	local name=$1 attempt output status
	for attempt in 1 2 3 4 5; do
		status=0
		# Its errors go to stderr, into the boot log; only the value is captured.
		output=$(python3 "$files_dir/read-parameter.py" "$name") || status=$?
		if ((status == 0)); then
			printf '%s' "$output"
			return 0
		elif ((status == 3)); then
			return 3
		fi
		log "reading $name failed (attempt $attempt)"
		sleep $((attempt * 3))
	done
	return 1
}

main() {
	local name backends checksum status=0
	install_packages
	require_haproxy_version
	install_files
	name="$(parameter_prefix)/backends"
	backends=$(fetch_backends "$name") || status=$?
	if ((status == 3)); then
		log "$name does not exist yet; the controller pushes a list on its next run"
		return 0
	elif ((status != 0)); then
		log "could not read $name; the controller pushes a list on its next run"
		return 1
	fi
	checksum=$(printf '%s' "$backends" | sha256sum)
	checksum=${checksum%% *}
	log "applying $name (checksum $checksum)"
	SSM_Backends=$backends SSM_Checksum=$checksum "$root$APPLY"
}

main "$@"
