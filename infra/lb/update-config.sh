#!/usr/bin/env bash
# Installs a new haproxy.cfg on this load balancer: validate, check, install, reload, and roll
# back to the previous file if HAProxy does not come up with the new one.
#
# Run by the SSM document LbFailover-UpdateConfig (infra/ssm/, rendered from this file by
# infra/render_document.py), which infra/update_config.py sends to one LB of a cluster at a time.
# User data runs at first boot only: this is how a changed configuration reaches running LBs.
#
# Inputs, as SSM Agent >= 3.3.2746.0 passes parameters with `interpolationType: ENV_VAR`:
#   SSM_Config     the new haproxy.cfg, base64-encoded (so the value holds no shell syntax and
#                  no newline, whatever the file says)
#   SSM_Checksum   sha256 hex of the decoded file
# Paths, overridable for local use (the same variables as apply-backends.sh):
#   LBSIDE_HAPROXY_CONFIG   the file this replaces          (default /etc/haproxy/haproxy.cfg)
#   LBSIDE_BACKENDS_FILE    the backend section loaded with it (default /etc/haproxy/backends.cfg)
#   LBSIDE_HAPROXY_PIDFILE  set: reload by SIGUSR2 to the master pid in that file (master-worker mode)
#                        unset: `systemctl reload haproxy`
#   LBSIDE_HAPROXY_BIN      the haproxy binary used for `haproxy -c`  (default: haproxy on PATH)
#   LBSIDE_RELOAD_TIMEOUT   seconds to wait for the new worker after a reload (default 10)
#
# Exit status: 0 installed (or already installed); 2 the input or the configuration was refused
# and nothing changed; 1 HAProxy did not take the new file, and the previous one is back.
set -euo pipefail
umask 022

# The document's maxChars: 16 KB of base64 is a 12 KB configuration.
readonly MAX_CHARS=16384

config="${LBSIDE_HAPROXY_CONFIG:-/etc/haproxy/haproxy.cfg}"
backends_file="${LBSIDE_BACKENDS_FILE:-/etc/haproxy/backends.cfg}"
pidfile="${LBSIDE_HAPROXY_PIDFILE:-}"
haproxy_bin="${LBSIDE_HAPROXY_BIN:-$(command -v haproxy || printf /usr/sbin/haproxy)}"
reload_timeout="${LBSIDE_RELOAD_TIMEOUT:-10}"

log() { printf 'update-config: %s\n' "$*"; }
reject() {
	printf 'update-config: rejected: %s; nothing changed\n' "$*" >&2
	exit 2
}
die() {
	printf 'update-config: failed: %s\n' "$*" >&2
	exit 1
}

[[ -n ${SSM_Config+x} ]] || reject "SSM_Config is not set"
[[ -n ${SSM_Checksum+x} ]] || reject "SSM_Checksum is not set"
encoded=$SSM_Config
checksum=$SSM_Checksum
[[ -n $encoded ]] || reject "the configuration is empty"
((${#encoded} <= MAX_CHARS)) || reject "the configuration is ${#encoded} characters, more than $MAX_CHARS"
base64_characters='^[A-Za-z0-9+/]+={0,2}$'
[[ $encoded =~ $base64_characters ]] || reject "Config is not base64"
[[ $checksum =~ ^[0-9a-f]{64}$ ]] || reject "Checksum is not 64 lowercase hex characters"

# It replaces a configuration; the first one comes with the boot script.
[[ -f $config ]] || die "no $config to replace"
candidate=$(mktemp "$config.new.XXXXXX")
last_good="$config.last-good"
cleanup() { rm -f "$candidate"; }
trap cleanup EXIT

printf '%s' "$encoded" | base64 -d >"$candidate" 2>/dev/null || reject "Config is not valid base64"
chmod 0644 "$candidate"
actual=$(sha256sum <"$candidate")
actual=${actual%% *}
[[ $actual == "$checksum" ]] || reject "Checksum does not match the configuration (it hashes to $actual)"

# Checked as HAProxy will load it: with the backend section apply-backends.sh keeps.
if ! check_output=$("$haproxy_bin" -c -q -f "$candidate" -f "$backends_file" 2>&1); then
	printf '%s\n' "$check_output" >&2
	reject "haproxy -c refused the new configuration with $backends_file"
fi

# One change at a time: a backend push reloads HAProxy too, and takes the same lock.
exec 9>"$backends_file.lock"
flock -w 60 9 || die "another apply holds $backends_file.lock"

if [[ -f $config ]] && cmp -s "$candidate" "$config"; then
	log "configuration $checksum is already installed; nothing to do"
	exit 0
fi

master_pid() {
	local pid
	if [[ -n $pidfile ]]; then
		[[ -r $pidfile ]] || return 1
		IFS= read -r pid <"$pidfile" || return 1
	else
		pid=$(systemctl show --property MainPID --value haproxy) || return 1
	fi
	[[ $pid =~ ^[1-9][0-9]*$ ]] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
}

# The master's children (its workers), from /proc: no dependency on procps.
workers_of() {
	local stat line state parent
	for stat in /proc/[0-9]*/stat; do
		IFS= read -r line 2>/dev/null <"$stat" || continue
		# pid (comm) state ppid ...: comm may hold spaces and parentheses, so cut after the last ')'.
		read -r state parent _ <<<"${line##*) }"
		[[ $parent == "$1" && $state != Z ]] && printf '%s\n' "${line%% *}"
	done | sort
}

# A reload in master-worker mode: the master re-reads the files and starts a new worker; if the
# new configuration cannot start (an address already in use: `haproxy -c` binds nothing), the
# master keeps the old workers and no new one appears. Done once a worker is new.
reload() {
	local pid before after deadline
	pid=$(master_pid) || {
		log "no running HAProxy master"
		return 1
	}
	before=$(workers_of "$pid")
	if [[ -n $pidfile ]]; then
		kill -USR2 "$pid" || return 1
	else
		systemctl reload haproxy || return 1
	fi
	deadline=$((SECONDS + reload_timeout))
	while ((SECONDS <= deadline)); do
		kill -0 "$pid" 2>/dev/null || return 1
		after=$(workers_of "$pid")
		if [[ -n $after ]] && [[ -n $(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after")) ]]; then
			return 0
		fi
		sleep 0.05
	done
	log "no new HAProxy worker within ${reload_timeout}s"
	return 1
}

cp -p "$config" "$last_good"
mv -f "$candidate" "$config"
log "installed the new $config (checksum $checksum)"

if ! reload; then
	mv -f "$last_good" "$config"
	log "restored the previous $config"
	reload || log "reload with the previous configuration failed as well"
	die "HAProxy did not start a worker with the new configuration"
fi
rm -f "$last_good"
log "HAProxy reloaded with configuration $checksum"
