#!/usr/bin/env bash
# Applies a backend list to this load balancer's HAProxy through its Runtime API, without a reload.
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
# Paths and settings, overridable for local use:
#   LBSIDE_HAPROXY_CONFIG   main configuration       (default /etc/haproxy/haproxy.cfg)
#   LBSIDE_BACKENDS_FILE    the `backend web` section this script owns, loaded by HAProxy as a second
#                           `-f` file (HAProxy 2.6 has no include)   (default /etc/haproxy/backends.cfg)
#   LBSIDE_HAPROXY_SOCKET   HAProxy's admin-level stats socket (default /run/haproxy/admin.sock)
#   LBSIDE_HAPROXY_PIDFILE  set: HAProxy is the master whose pid that file holds (reloaded by
#                           SIGUSR2, started with `haproxy -W -D`); unset: systemd's haproxy unit
#   LBSIDE_HAPROXY_BIN      the haproxy binary used for `haproxy -c`  (default: haproxy on PATH)
#   LBSIDE_RELOAD_TIMEOUT   seconds to wait for HAProxy to serve the list after a reload (default 10)
#   LBSIDE_APPLY_METHOD     `runtime` (default), or `reload` to apply every change by a reload: how
#                           lists were applied before, kept to measure the two side by side (bench/)
#   LBSIDE_APPLY_KILL_AT    a step name (see `checkpoint` below): the script SIGKILLs itself there,
#                           as SSM kills a command that runs out of time (fault injection for tests)
#   LBSIDE_ALLOW_LOOPBACK   `1`: loopback backends are taken. Set only by the local stand-in
#                           (standin/haproxy.py), which runs every web server on loopback; never
#                           by a deployed LB, and no document parameter can set it.
#
# How a list is applied. Backend `web` is a row of slots, `server` lines s1, s2, ... each serving
# one address, or in maintenance (free). The running HAProxy is the truth: the list is served when
# the slots not in maintenance (`show servers state web`) hold exactly its entries. Otherwise:
#   1. plan from that state: a server that stays keeps its slot (its connections, statistics and
#      health state); a new entry takes a free slot; a server that leaves goes to maintenance,
#      which sends it no new request while those in flight finish (it drains);
#   2. write the file describing the same slots, so that a restart serves the same list (checked
#      with `haproxy -c`, moved in atomically);
#   3. change the running HAProxy: each new server into its slot (address, then ready), then the
#      leaving ones into maintenance; no reload, no client connection closed;
#   4. read the state back and compare it with the list.
# The one change the Runtime API cannot make is a slot that does not exist: when the free slots
# are fewer than the new entries, the file is written with twice as many slots as the list has
# (at least 8) and HAProxy reloads (the first list, or a list that grows past its slots). Slots over
# `add server`: a dynamic server in HAProxy 2.6 ignores `default-server` (so its health checks
# would be configured here instead of in haproxy.cfg), and `del server` waits for its idle
# connections. A push killed at any step is completed by the next push of the same list, since
# that starts from what HAProxy serves, never from the file alone.
#
# Exit status: 0 applied (or already served); 2 the input was rejected and nothing changed; 1 a step
# failed, the last good file was restored and HAProxy reloaded with it.
set -euo pipefail
umask 022

# Parameter Store holds at most 8 KB (advanced tier), so a longer list never came from the
# controller; the entry bound matches the document's allowedPattern.
readonly MAX_CHARS=8192
readonly MAX_ENTRIES=1000

method="${LBSIDE_APPLY_METHOD:-runtime}"
kill_at="${LBSIDE_APPLY_KILL_AT:-}"
allow_loopback="${LBSIDE_ALLOW_LOOPBACK:-}"

log() { printf 'apply-backends: %s\n' "$*"; }
reject() {
	printf 'apply-backends: rejected: %s; nothing changed\n' "$*" >&2
	exit 2
}
die() {
	printf 'apply-backends: failed: %s\n' "$*" >&2
	exit 1
}

# HAProxy's paths, lock, reload and start, shared with update-config.sh (rendered in place of
# this line by infra/render_document.py).
# shellcheck source=infra/lb/haproxy-control.sh
. "$(dirname "${BASH_SOURCE[0]}")/haproxy-control.sh"

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
addresses=() ports=()
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
	addresses+=("$address") ports+=("$port")
done


[[ $method == runtime || $method == reload ]] || reject "LBSIDE_APPLY_METHOD is '$method', not runtime or reload"

# --- the running HAProxy ---------------------------------------------------------------------

# HAProxy prints an IPv6 address in inet_ntop's form: the wanted entries are compared in it too.
readonly canonical_program='
import socket, sys
for address in sys.argv[1:]:
    print(socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address)))
'
v6=() v6_addresses=()
for i in "${!entries[@]}"; do
	if [[ ${entries[i]} == \[* ]]; then v6+=("$i") v6_addresses+=("${addresses[i]}"); fi
done
if ((${#v6[@]} > 0)); then
	mapfile -t canonical < <("$python" -c "$canonical_program" "${v6_addresses[@]}" || true)
	((${#canonical[@]} == ${#v6[@]})) || die "python3 is needed to compare IPv6 addresses with HAProxy's"
	for j in "${!v6[@]}"; do addresses[v6[j]]=${canonical[j]}; done
fi
# Addresses no web server has are refused, whoever asks (the controller leaves them out of every
# list too): a list naming one is refused whole, loudly, and nothing is applied. Prints the
# class of an address, nothing for one a web server can have.
ipv4_class() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	if ((a == 169 && b == 254)); then
		printf 'link-local: the instance metadata service is one'
	elif ((a == 0)); then
		# 0.0.0.0 itself, as a server address, means "wherever the client connected" to HAProxy.
		printf 'unspecified (0.0.0.0/8)'
	elif ((a >= 224 && a <= 239)); then
		printf 'multicast'
	elif ((a == 255 && b == 255 && c == 255 && d == 255)); then
		printf 'broadcast'
	elif ((a == 127)) && [[ $allow_loopback != 1 ]]; then
		printf 'loopback'
	fi
}
# On inet_ntop's form (lowercase, compressed), which the addresses above were turned into.
ipv6_class() {
	if [[ $1 =~ ^::ffff:([0-9.]+)$ ]]; then
		ipv4_class "${BASH_REMATCH[1]}"
		return
	fi
	case $1 in
	::) printf 'unspecified' ;;
	::1) [[ $allow_loopback == 1 ]] || printf 'loopback' ;;
	fe[89ab][0-9a-f]:*) printf 'link-local' ;;
	fd00:ec2::254) printf 'the instance metadata service' ;;
	ff[0-9a-f][0-9a-f]:*) printf 'multicast' ;;
	esac
}
refused=()
for i in "${!entries[@]}"; do
	if [[ ${entries[i]} == \[* ]]; then
		class=$(ipv6_class "${addresses[i]}")
	else
		class=$(ipv4_class "${addresses[i]}")
	fi
	[[ -z $class ]] || refused+=("${entries[i]} ($class)")
done
if ((${#refused[@]} > 0)); then
	named=$(printf '%s, ' "${refused[@]}")
	reject "not a web server's address: ${named%, }; the whole list is refused"
fi

wanted=()
declare -A want=()
for i in "${!entries[@]}"; do
	if [[ ${entries[i]} == \[* ]]; then
		entry="[${addresses[i]}]:${ports[i]}"
	else
		entry=${entries[i]}
	fi
	[[ -z ${want[$entry]+x} ]] || reject "'${entries[i]}' is listed twice (as $entry)"
	want[$entry]=$i
	wanted+=("$entry")
done

# The slots of backend `web` as the running HAProxy has them: names in order, each one's entry,
# and whether it is in service (no maintenance or drain flag in srv_admin_state: 0x01 forced,
# 0x02 inherited, 0x20 resolution maintenance, 0x08/0x10 drain; 0x04 only records `disabled` in
# the configuration and stays set once the server is made ready).
declare -a slot_names=()
declare -A slot_entry=() slot_live=()
read_state() {
	local output line i
	local -a fields
	local -A column=()
	output=$(printf 'show servers state web\n' | cli) || return 1
	slot_names=() slot_entry=() slot_live=()
	while IFS= read -r line; do
		read -r -a fields <<<"$line"
		if [[ ${fields[0]:-} == "#" ]]; then
			for i in "${!fields[@]}"; do column[${fields[i]}]=$((i - 1)); done
			continue
		fi
		[[ -n ${column[srv_port]:-} && ${#fields[@]} -gt ${column[srv_port]} ]] || continue
		local name=${fields[column[srv_name]]} address=${fields[column[srv_addr]]}
		local port=${fields[column[srv_port]]} admin=${fields[column[srv_admin_state]]}
		[[ $address == *:* ]] && address="[$address]"
		slot_names+=("$name")
		slot_entry[$name]="$address:$port"
		if (((admin & 0x3b) == 0)); then slot_live[$name]=1; fi
	done <<<"$output"
	# No header: not a state dump (no backend `web`, or not an admin-level socket).
	[[ -n ${column[srv_admin_state]:-} ]]
}

# Whether the slots in service hold exactly the wanted entries, each once.
serves_wanted() {
	local name count=0
	local -A served=()
	for name in "${slot_names[@]}"; do
		[[ -n ${slot_live[$name]:-} ]] || continue
		[[ -n ${want[${slot_entry[$name]}]+x} && -z ${served[${slot_entry[$name]}]+x} ]] || return 1
		served[${slot_entry[$name]}]=1
		count=$((count + 1))
	done
	((count == ${#wanted[@]}))
}

# Fault injection: the script dies here, without cleanup, as a command SSM kills on timeout.
checkpoint() {
	if [[ $kill_at == "$1" ]]; then
		log "killed at $1 (LBSIDE_APPLY_KILL_AT)"
		kill -KILL $$
	fi
}

# After a reload the socket answers from the new worker once it has bound it: wait for the list.
await_wanted() {
	local deadline=$((SECONDS + reload_timeout))
	until read_state && serves_wanted; do
		((SECONDS <= deadline)) || return 1
		sleep 0.05
	done
}

# `address:port` or `[address]:port` -> the address, as `set server ... addr` takes it.
address_of() {
	local address=${1%:*}
	address=${address#[}
	printf '%s' "${address%]}"
}

# --- plan -------------------------------------------------------------------------------------

backends_dir=$(dirname "$backends_file")
[[ -d $backends_dir ]] || die "no directory $backends_dir"

lock_haproxy
# Left behind by an apply that was killed mid-way.
rm -f "$backends_file".new.*

need_reload=0
if ! read_state; then
	if master_pid >/dev/null; then
		die "HAProxy runs but its admin socket $socket gave no state of backend web; nothing changed"
	fi
	log "HAProxy is not running: it starts with the list"
	slot_names=() slot_entry=() slot_live=()
	need_reload=1
fi

# The plan: the final slots (names in order, entry, in service or not), and the runtime changes.
plan_names=("${slot_names[@]}")
declare -A plan_entry=() plan_live=() placed=()
for name in "${slot_names[@]}"; do plan_entry[$name]=${slot_entry[$name]}; done
adds=() removes=()
for name in "${slot_names[@]}"; do
	[[ -n ${slot_live[$name]:-} ]] || continue
	entry=${slot_entry[$name]}
	if [[ -n ${want[$entry]+x} && -z ${placed[$entry]+x} ]]; then
		placed[$entry]=$name plan_live[$name]=1
	else
		removes+=("$name")
	fi
done
# A free slot that last served the entry takes it back (same statistics); then the other free
# ones in order. Slots leaving in this push are not reused before the next one: they still drain.
free=()
for name in "${slot_names[@]}"; do
	[[ -z ${slot_live[$name]:-} ]] || continue
	entry=${slot_entry[$name]}
	if [[ -n ${want[$entry]+x} && -z ${placed[$entry]+x} ]]; then
		placed[$entry]=$name plan_live[$name]=1
		adds+=("$name")
	else
		free+=("$name")
	fi
done
missing=()
for entry in "${wanted[@]}"; do [[ -n ${placed[$entry]+x} ]] || missing+=("$entry"); done
if ((${#missing[@]} > ${#free[@]})); then
	# Out of slots: a new row, twice the list (at least 8), the wanted entries first. Only a
	# reload loads it.
	need_reload=1 adds=() removes=() plan_names=()
	plan_entry=() plan_live=()
	slots=$((2 * ${#wanted[@]} > 8 ? 2 * ${#wanted[@]} : 8))
	for ((i = 1; i <= slots; i++)); do
		plan_names+=("s$i")
		plan_entry[s$i]=${wanted[i - 1]:-0.0.0.0:1}
		((i > ${#wanted[@]})) || plan_live[s$i]=1
	done
else
	for i in "${!missing[@]}"; do
		name=${free[i]}
		plan_entry[$name]=${missing[i]} plan_live[$name]=1
		adds+=("$name")
	done
fi
for name in "${removes[@]}"; do unset "plan_live[$name]"; done
checkpoint planned

candidate=$(mktemp "$backends_file.new.XXXXXX")
last_good="$backends_file.last-good"
cleanup() { rm -f "$candidate"; }
trap cleanup EXIT
{
	printf '# lbf-checksum %s\n' "$checksum"
	printf '# Written by apply-backends.sh for the list above; HAProxy serves the slots not disabled.\n'
	printf 'backend web\n'
	# The controller's LB probe: 200 while this LB can serve, 503 when no web server is usable,
	# so "healthy" means "can serve", not merely "HAProxy runs".
	printf '    http-request return status 503 content-type text/plain string "no usable web server" if { path /health } { nbsrv lt 1 }\n'
	printf '    http-request return status 200 content-type text/plain string "ok" if { path /health }\n'
	for name in "${plan_names[@]}"; do
		if [[ -n ${plan_live[$name]:-} ]]; then
			printf '    server %s %s\n' "$name" "${plan_entry[$name]}"
		else
			printf '    server %s %s disabled\n' "$name" "${plan_entry[$name]}"
		fi
	done
} >"$candidate"
chmod 0644 "$candidate"

if ((need_reload == 0 && ${#adds[@]} == 0 && ${#removes[@]} == 0)) && cmp -s "$candidate" "$backends_file"; then
	log "HAProxy already serves checksum $checksum (${#entries[@]} servers); nothing to do"
	exit 0
fi

# --- apply ------------------------------------------------------------------------------------

restore() {
	if [[ -f $last_good ]]; then
		mv -f "$last_good" "$backends_file"
		log "restored the last good $backends_file"
		reload || log "reload after restoring failed as well"
	else
		log "there was no earlier $backends_file to restore"
	fi
}

if ! cmp -s "$candidate" "$backends_file"; then
	# The whole configuration, as HAProxy will load it, is checked before anything is replaced.
	if ! check_output=$("$haproxy_bin" -c -q -f "$config" -f "$candidate" 2>&1); then
		printf '%s\n' "$check_output" >&2
		reject "haproxy -c refused the configuration with this list"
	fi
	if [[ -f $backends_file ]]; then
		cp -p "$backends_file" "$last_good"
	fi
	mv -f "$candidate" "$backends_file"
	log "wrote ${#entries[@]} servers in ${#plan_names[@]} slots to $backends_file (checksum $checksum)"
fi
checkpoint file-written

[[ $method == runtime ]] || need_reload=1
if ((need_reload == 0)); then
	# New servers first, then the leaving ones: the pool never shrinks below the list mid-way.
	# A slot is in maintenance before its address changes, which also closes its idle
	# connections to the previous address.
	for name in "${adds[@]}"; do
		entry=${plan_entry[$name]}
		printf 'set server web/%s state maint; set server web/%s addr %s port %s; set server web/%s state ready\n' \
			"$name" "$name" "$(address_of "$entry")" "${entry##*:}" "$name"
	done | cli >/dev/null || log "the admin socket failed while adding servers"
	checkpoint servers-added
	for name in "${removes[@]}"; do
		printf 'set server web/%s state maint\n' "$name"
	done | cli >/dev/null || log "the admin socket failed while removing servers"
	checkpoint servers-removed
	if read_state && serves_wanted; then
		rm -f "$last_good"
		log "changed at run time, no reload (${#adds[@]} added, ${#removes[@]} removed); serving: $backends"
		exit 0
	fi
	log "the Runtime API left HAProxy serving another list: reloading with the file instead"
fi

if ! reload; then
	restore
	die "HAProxy did not reload with the new list"
fi
checkpoint reloaded
if ! await_wanted; then
	restore
	die "HAProxy did not serve the new list within ${reload_timeout}s of reloading"
fi
rm -f "$last_good"
log "HAProxy reloaded; serving: $backends"
