#!/usr/bin/env bash
# Applies a backend list to this load balancer's HAProxy: validate, write, check, reload.
#
# Run by the SSM document LbFailover-UpdateBackends (infra/ssm/, rendered from this file by
# infra/render_document.py), by the boot script (user-data.sh) and by the local stand-in.
#
# Inputs, as SSM Agent >= 3.3.2746.0 passes parameters with `interpolationType: ENV_VAR`:
#   SSM_Backends   `address:port` entries (IPv6 as `[address]:port`), joined by single spaces
#   SSM_Checksum   sha256 hex of exactly SSM_Backends
# The values are data: they are checked here character by character and never evaluated. Older
# agents set no SSM_* variables; the rendered document then exports them from the parameter
# references in its command text, which is safe only because the document's allowedPatterns admit
# no shell-active character (see infra/render_document.py). Validation here is the same either way.
#
# Paths, overridable for local use:
#   LBF_HAPROXY_CONFIG   main configuration       (default /etc/haproxy/haproxy.cfg)
#   LBF_BACKENDS_FILE    the `backend web` section this script owns, loaded by HAProxy as a second
#                        `-f` file (HAProxy 2.6 has no include)   (default /etc/haproxy/backends.cfg)
#   LBF_HAPROXY_PIDFILE  set: reload by SIGUSR2 to the master pid in that file (master-worker mode)
#                        unset: `systemctl reload-or-restart haproxy`
#   LBF_HAPROXY_BIN      the haproxy binary used for `haproxy -c`  (default: haproxy on PATH)
#   LBF_RELOAD_TIMEOUT   seconds to wait for the new worker after a reload (default 10)
#
# The applied checksum is recorded in the first line of the backends file; applying the same
# checksum again is a no-op success. Exit status: 0 applied (or already applied); 2 the input was
# rejected and nothing changed; 1 a step failed, the last good file was restored.
set -euo pipefail
umask 022

# Parameter Store holds at most 8 KB (advanced tier), so a longer list never came from the
# controller; the entry bound matches the document's allowedPattern.
readonly MAX_CHARS=8192
readonly MAX_ENTRIES=1000

config="${LBF_HAPROXY_CONFIG:-/etc/haproxy/haproxy.cfg}"
backends_file="${LBF_BACKENDS_FILE:-/etc/haproxy/backends.cfg}"
pidfile="${LBF_HAPROXY_PIDFILE:-}"
# SSM Agent runs commands with its own PATH; Debian and Amazon Linux install haproxy in /usr/sbin.
haproxy_bin="${LBF_HAPROXY_BIN:-$(command -v haproxy || printf /usr/sbin/haproxy)}"
reload_timeout="${LBF_RELOAD_TIMEOUT:-10}"

log() { printf 'apply-backends: %s\n' "$*"; }
reject() {
	printf 'apply-backends: rejected: %s; nothing changed\n' "$*" >&2
	exit 2
}
die() {
	printf 'apply-backends: failed: %s\n' "$*" >&2
	exit 1
}

# --- validation: everything below treats the values as data, never as shell text -------------

valid_octet() { [[ $1 =~ ^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$ ]]; }

valid_ipv4() {
	local IFS=.
	local -a parts
	[[ $1 =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
	read -r -a parts <<<"$1"
	valid_octet "${parts[0]}" && valid_octet "${parts[1]}" &&
		valid_octet "${parts[2]}" && valid_octet "${parts[3]}"
}

# The textual forms inet_pton accepts: hex groups of 1-4 digits, at most one `::`, an optional
# dotted IPv4 tail counting as two groups.
valid_ipv6() {
	local address=$1 groups=0 limit=8 group
	local -a parts
	[[ ${#address} -le 45 && $address == *:*:* ]] || return 1
	if [[ $address == *.* ]]; then
		valid_ipv4 "${address##*:}" || return 1
		address="${address%:*}:0:0"
	fi
	[[ $address =~ ^[0-9A-Fa-f:]+$ ]] || return 1
	if [[ $address == *::* ]]; then
		[[ ${address#*::} != *::* ]] || return 1
		limit=7
		address="${address/::/:x:}"
	fi
	[[ $address != :[!x]* && $address != *[!x]: && $address != *:::* ]] || return 1
	address="${address#:}"
	address="${address%:}"
	IFS=: read -r -a parts <<<"$address"
	for group in "${parts[@]}"; do
		[[ $group == x ]] && continue
		[[ $group =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
		groups=$((groups + 1))
	done
	((groups <= limit)) && { [[ $limit == 7 ]] || ((groups == 8)); }
}

valid_port() { [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] && ((10#$1 <= 65535)); }

[[ -n ${SSM_Backends+x} ]] || reject "SSM_Backends is not set"
[[ -n ${SSM_Checksum+x} ]] || reject "SSM_Checksum is not set"
backends=$SSM_Backends
checksum=$SSM_Checksum

# An empty list would leave HAProxy with nothing to serve: never applied, whoever asks.
[[ -n $backends ]] || reject "the backend list is empty"
((${#backends} <= MAX_CHARS)) || reject "the backend list is ${#backends} characters, more than $MAX_CHARS"
[[ $checksum =~ ^[0-9a-f]{64}$ ]] || reject "Checksum is not 64 lowercase hex characters"
# (In a bracket expression `]` must come first; the pattern sits in a variable so bash does not
# read its brackets and the space as syntax.)
allowed_characters='^[][0-9A-Fa-f.: ]+$'
[[ $backends =~ $allowed_characters ]] ||
	reject "the backend list has characters other than hex digits, '.', ':', '[', ']' and spaces"
[[ $backends != " "* && $backends != *" " && $backends != *"  "* ]] ||
	reject "entries must be joined by single spaces"

actual=$(printf '%s' "$backends" | sha256sum)
actual=${actual%% *}
[[ $actual == "$checksum" ]] || reject "Checksum does not match the list (the list hashes to $actual)"

read -r -a entries <<<"$backends"
((${#entries[@]} <= MAX_ENTRIES)) || reject "${#entries[@]} entries, more than $MAX_ENTRIES"

declare -A seen=()
server_lines=""
for entry in "${entries[@]}"; do
	if [[ $entry =~ ^\[([0-9A-Fa-f:.]+)\]:([0-9]+)$ ]]; then
		address=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
		valid_ipv6 "$address" || reject "'$entry' is not an IPv6 address and port"
	elif [[ $entry =~ ^([0-9.]+):([0-9]+)$ ]]; then
		address=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
		valid_ipv4 "$address" || reject "'$entry' is not an IPv4 address and port"
	else
		reject "'$entry' is not address:port (IPv6 must be written [address]:port)"
	fi
	valid_port "$port" || reject "'$entry' has a port outside 1-65535"
	[[ -z ${seen[$entry]+x} ]] || reject "'$entry' is listed twice"
	seen[$entry]=1
	# Server names derive from the address, so a server keeps its name (and its stats and
	# health state) from one list to the next. HAProxy names admit ':' and '.', not brackets.
	name=${entry//[\[\]]/}
	server_lines+="    server $name $entry"$'\n'
done

# --- apply ---------------------------------------------------------------------------------

backends_dir=$(dirname "$backends_file")
[[ -d $backends_dir ]] || die "no directory $backends_dir"

# One apply at a time: the boot script and a pushed command may overlap.
exec 9>"$backends_file.lock"
flock -w 60 9 || die "another apply holds $backends_file.lock"

header="# lbf-checksum $checksum"
if [[ -f $backends_file ]] && IFS= read -r first_line <"$backends_file" && [[ $first_line == "$header" ]]; then
	log "checksum $checksum is already applied (${#entries[@]} servers); nothing to do"
	exit 0
fi

candidate=$(mktemp "$backends_file.new.XXXXXX")
last_good="$backends_file.last-good"
cleanup() { rm -f "$candidate"; }
trap cleanup EXIT

{
	printf '%s\n' "$header"
	printf '# Written by apply-backends.sh at %s; the next apply replaces it.\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'backend web\n'
	printf '%s' "$server_lines"
} >"$candidate"
chmod 0644 "$candidate"

# The whole configuration, as HAProxy will load it, is checked before anything is replaced.
if ! check_output=$("$haproxy_bin" -c -q -f "$config" -f "$candidate" 2>&1); then
	printf '%s\n' "$check_output" >&2
	reject "haproxy -c refused the configuration with this list"
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

# A graceful reload in master-worker mode: the master re-reads both files and starts a new worker,
# the old one finishes its connections. Done once the master has a worker it did not have before.
reload() {
	local pid before after deadline
	if [[ -n $pidfile ]]; then
		pid=$(master_pid) || {
			log "no running HAProxy master in $pidfile"
			return 1
		}
		before=$(workers_of "$pid")
		kill -USR2 "$pid" || return 1
	else
		if ! pid=$(master_pid); then
			# Not running yet (first boot): start it with the new file.
			systemctl reload-or-restart haproxy || return 1
			master_pid >/dev/null || return 1
			return 0
		fi
		before=$(workers_of "$pid")
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

restore() {
	if [[ -f $last_good ]]; then
		mv -f "$last_good" "$backends_file"
		log "restored the last good $backends_file"
		reload || log "reload after restoring failed as well"
	else
		log "there was no earlier $backends_file to restore"
	fi
}

if [[ -f $backends_file ]]; then
	cp -p "$backends_file" "$last_good"
fi
mv -f "$candidate" "$backends_file"
log "wrote ${#entries[@]} servers to $backends_file (checksum $checksum)"

if ! reload; then
	restore
	die "HAProxy did not reload with the new list"
fi
rm -f "$last_good"
log "HAProxy reloaded; serving: $backends"
