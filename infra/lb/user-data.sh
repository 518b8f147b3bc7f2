#!/bin/bash
# Boot script (EC2 user data) of an lb-failover load balancer.
#
# A load balancer gets a new IP every time it starts, and nothing pushes it a list until the
# controller's next run: so it pulls the current list from Parameter Store and applies it with
# the same apply-backends.sh the SSM document runs, and serves the current web pool at once.
#
# Use the rendered form as user data: `python infra/render_document.py user-data` embeds
# haproxy.cfg and apply-backends.sh (LBF_FILES_DIR points at them). Run as-is, it takes them from
# its own directory.
#
# Inputs (environment, all optional):
#   LBF_PARAMETER_PREFIX  Parameter Store prefix; default /lbf/<value of the lbf:cluster tag>,
#                         read from instance metadata (the launch template must allow tags in
#                         metadata: InstanceMetadataTags=enabled)
#   LBF_FILES_DIR         where haproxy.cfg and apply-backends.sh are
#
# The instance role needs ssm:GetParameter on <prefix>/backends (and the SSM Agent's usual
# permissions, AmazonSSMManagedInstanceCore, for the pushed commands).
set -euo pipefail

files_dir="${LBF_FILES_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
prefix="${LBF_PARAMETER_PREFIX:-}"

readonly APPLY=/usr/local/sbin/lbf-apply-backends
readonly CONFIG=/etc/haproxy/haproxy.cfg
readonly BACKENDS=/etc/haproxy/backends.cfg
readonly DROP_IN=/etc/systemd/system/haproxy.service.d/lb-failover.conf

log() { printf 'lbf-user-data: %s\n' "$*"; }

# Instance metadata, IMDSv2 (a session token first).
imds() {
	local token
	token=$(curl -fsS -m 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
		http://169.254.169.254/latest/api/token)
	curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}

install_packages() {
	if command -v haproxy >/dev/null && command -v aws >/dev/null && command -v curl >/dev/null; then
		return 0
	fi
	if command -v apt-get >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy awscli curl
	elif command -v dnf >/dev/null; then
		dnf install -y -q haproxy awscli curl
	elif command -v yum >/dev/null; then
		yum install -y -q haproxy awscli curl
	fi
	command -v haproxy >/dev/null || {
		log "haproxy could not be installed"
		exit 1
	}
}

install_files() {
	local haproxy_bin
	haproxy_bin=$(command -v haproxy)
	install -m 0755 "$files_dir/apply-backends.sh" "$APPLY"
	install -m 0644 "$files_dir/haproxy.cfg" "$CONFIG"
	# HAProxy loads the backend section as a second file; until a list is applied it is a
	# backend without servers, so /health answers 503 and the controller sees "cannot serve".
	if [[ ! -f $BACKENDS ]]; then
		printf '# lbf-checksum none\nbackend web\n' >"$BACKENDS"
	fi
	# Start, check and reload with both files, whatever the distribution's unit passes
	# (Debian: CONFIG/EXTRAOPTS, Amazon Linux: OPTIONS): the drop-in replaces the commands.
	install -d -m 0755 "$(dirname "$DROP_IN")"
	cat >"$DROP_IN" <<EOF
# Written by lb-failover's user data: haproxy.cfg + the backend section apply-backends.sh writes.
[Service]
RuntimeDirectory=haproxy
ExecStart=
ExecStart=$haproxy_bin -Ws -f $CONFIG -f $BACKENDS -p /run/haproxy.pid -S /run/haproxy-master.sock
ExecReload=
ExecReload=$haproxy_bin -Ws -f $CONFIG -f $BACKENDS -c -q
ExecReload=/bin/kill -USR2 \$MAINPID
EOF
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
	local name=$1 region=$2 attempt output
	for attempt in 1 2 3 4 5; do
		if output=$(aws ssm get-parameter --region "$region" --name "$name" \
			--query Parameter.Value --output text 2>&1); then
			printf '%s' "$output"
			return 0
		fi
		if [[ $output == *ParameterNotFound* ]]; then
			return 3
		fi
		log "get-parameter $name failed (attempt $attempt): $output"
		sleep $((attempt * 3))
	done
	return 1
}

main() {
	local name region backends checksum status=0
	install_packages
	install_files
	name="$(parameter_prefix)/backends"
	region=$(imds meta-data/placement/region)
	backends=$(fetch_backends "$name" "$region") || status=$?
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
	SSM_Backends=$backends SSM_Checksum=$checksum "$APPLY"
}

main "$@"
