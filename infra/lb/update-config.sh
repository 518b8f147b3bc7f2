#!/usr/bin/env bash
# Installs a new haproxy.cfg on this load balancer: validate, check, install, reload, check that
# the LB still serves, and roll back to the previous file if it does not.
#
# Run by the SSM document LbFailover-UpdateConfig (infra/ssm/, rendered from this file by
# infra/render_document.py), which infra/update_config.py sends to one LB of a cluster at a time
# and goes on to the next only after this LB printed that it serves.
# User data runs at first boot only: this is how a changed configuration reaches running LBs.
#
# Inputs, as SSM Agent >= 3.3.2746.0 passes parameters with `interpolationType: ENV_VAR`:
#   SSM_Config     the new haproxy.cfg, base64-encoded (so the value holds no shell syntax and
#                  no newline, whatever the file says)
#   SSM_Checksum   sha256 hex of the decoded file
# Paths, overridable for local use (the same variables as apply-backends.sh):
#   LBSIDE_HAPROXY_CONFIG   the file this replaces          (default /etc/haproxy/haproxy.cfg)
#   LBSIDE_BACKENDS_FILE    the backend section loaded with it (default /etc/haproxy/backends.cfg)
#   LBSIDE_HAPROXY_SOCKET   HAProxy's admin-level stats socket (default /run/haproxy/admin.sock)
#   LBSIDE_HAPROXY_PIDFILE  set: HAProxy is the master whose pid that file holds (reloaded by
#                           SIGUSR2, started with `haproxy -W -D`); unset: systemd's haproxy unit
#   LBSIDE_HAPROXY_BIN      the haproxy binary used for `haproxy -c`  (default: haproxy on PATH)
#   LBSIDE_RELOAD_TIMEOUT   seconds to wait for a new worker after a reload or start (default 10)
#   LBSIDE_SERVE_TIMEOUT    seconds the LB has to serve after a change (default 20)
#   LBSIDE_BIND             the frontend's address:port, as haproxy.cfg reads it (default :80,
#                           checked on 127.0.0.1)
#
# "Serves" is what a client and the controller would see, checked on this LB, several times in a
# row: the Runtime API shows a server of backend `web` up, `GET /health` through the frontend
# answers 200 (the controller's probe), and `GET /` through the frontend is answered by a web
# server (no 5xx). A configuration can pass `haproxy -c`, start, and still serve nothing (a
# `use_backend` naming a backend without servers answers 503 to everything); one whose worker
# cannot start (a chroot to a missing directory) makes the master exit. Either way the previous
# file goes back, and HAProxy is reloaded with it, or started again when its master is gone.
#
# Exit status: 0 installed (or already installed) and serving; 2 the input or the configuration
# was refused and nothing changed; 1 the LB did not serve with the new file and the previous one
# is back (or, with nothing changed, the LB does not serve now).
set -euo pipefail
umask 022

# The document's maxChars: 16 KB of base64 is a 12 KB configuration.
readonly MAX_CHARS=16384
# Consecutive passes of the serving check, this far apart: a request answered by the worker
# that a reload retires must not count for the new one.
readonly SERVE_PASSES=3
readonly SERVE_PAUSE=0.3

serve_timeout="${LBSIDE_SERVE_TIMEOUT:-20}"
bind="${LBSIDE_BIND:-:80}"

log() { printf 'update-config: %s\n' "$*"; }
reject() {
	printf 'update-config: rejected: %s; nothing changed\n' "$*" >&2
	exit 2
}
die() {
	printf 'update-config: failed: %s\n' "$*" >&2
	exit 1
}

# HAProxy's paths, lock, reload and start, shared with apply-backends.sh (rendered in place of
# this line by infra/render_document.py).
# shellcheck source=infra/lb/haproxy-control.sh
. "$(dirname "${BASH_SOURCE[0]}")/haproxy-control.sh"

[[ -n ${SSM_Config+x} ]] || reject "SSM_Config is not set"
[[ -n ${SSM_Checksum+x} ]] || reject "SSM_Checksum is not set"
encoded=$SSM_Config
checksum=$SSM_Checksum
[[ -n $encoded ]] || reject "the configuration is empty"
((${#encoded} <= MAX_CHARS)) || reject "the configuration is ${#encoded} characters, more than $MAX_CHARS"
base64_characters='^[A-Za-z0-9+/]+={0,2}$'
[[ $encoded =~ $base64_characters ]] || reject "Config is not base64"
[[ $checksum =~ ^[0-9a-f]{64}$ ]] || reject "Checksum is not 64 lowercase hex characters"
[[ $serve_timeout =~ ^[1-9][0-9]*$ ]] || reject "LBSIDE_SERVE_TIMEOUT is '$serve_timeout', not a number of seconds"

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

# The frontend as a client reaches it from this LB: a wildcard bind is checked on loopback.
host=${bind%:*} port=${bind##*:}
[[ $host == "" || $host == "*" || $host == 0.0.0.0 ]] && host=127.0.0.1
[[ $host == "[::]" || $host == "::" ]] && host=::1
host=${host#[}
host=${host%]}

readonly serving_program='
import http.client, socket, sys

admin_socket, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


def fail(reason):
    print(reason)
    sys.exit(1)


try:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(5)
        connection.connect(admin_socket)
        connection.sendall(b"show servers state web\n")
        state = b""
        while True:
            data = connection.recv(65536)
            if not data:
                break
            state += data
except OSError as error:
    fail(f"no answer from the admin socket {admin_socket}: {error}")
columns, up = None, 0
for line in state.decode(errors="replace").splitlines():
    fields = line.split()
    if fields[:1] == ["#"]:
        columns = fields[1:]
    elif columns and len(fields) >= len(columns):
        server = dict(zip(columns, fields))
        # op state 2 is UP; admin state without maintenance or drain flags is in service.
        if server["srv_op_state"] == "2" and int(server["srv_admin_state"]) & 0x3B == 0:
            up += 1
if columns is None:
    fail("the Runtime API shows no backend web")
if up == 0:
    fail("no server of backend web is up")


def get(path):
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path, headers={"User-Agent": "lb-failover update-config"})
        response = connection.getresponse()
        response.read(4096)
        return response.status
    except (OSError, http.client.HTTPException) as error:
        fail(f"GET {path} through the frontend {host}:{port}: {error}")
    finally:
        connection.close()


status = get("/health")
if status != 200:
    fail(f"GET /health through the frontend answered {status}, not 200")
status = get("/")
if status >= 500:
    fail(f"GET / through the frontend answered {status}")
print(f"{up} server(s) of backend web up, /health 200, / {status}")
'

# Prints why not, or what it saw; true once the check passed SERVE_PASSES times in a row.
await_serving() {
	local deadline=$((SECONDS + serve_timeout)) passes=0 seen=""
	while ((SECONDS <= deadline)); do
		if seen=$("$python" -c "$serving_program" "$socket" "$host" "$port" 2>&1); then
			passes=$((passes + 1))
			if ((passes >= SERVE_PASSES)); then
				printf '%s' "$seen"
				return 0
			fi
		else
			passes=0
		fi
		sleep "$SERVE_PAUSE"
	done
	printf '%s' "$seen"
	return 1
}

lock_haproxy

# A run stopped between installing a file and confirming it (SSM ends a command at its time
# limit) leaves the file it replaced beside it: the last one that served goes back first.
if [[ -f $last_good ]]; then
	log "an earlier update did not finish: putting back $last_good, the last file that served"
	mv -f "$last_good" "$config"
	reload || die "HAProxy did not come back with the file an earlier update replaced"
fi

if [[ -f $config ]] && cmp -s "$candidate" "$config"; then
	# Nothing to change, but the rollout goes on to the next LB only past one that serves.
	if ! seen=$(await_serving); then
		die "configuration $checksum is already installed, but this LB does not serve: $seen"
	fi
	log "configuration $checksum is already installed; nothing to do"
	log "serving: $seen"
	exit 0
fi

# Put the previous file back, and HAProxy on it: reloaded, or started when its master is gone.
roll_back() {
	local seen
	mv -f "$last_good" "$config"
	log "restored the previous $config"
	if ! reload; then
		log "HAProxy did not come back with the previous configuration either"
		return
	fi
	if seen=$(await_serving); then
		log "the previous configuration serves again: $seen"
	else
		log "the previous configuration runs but does not serve either: $seen"
	fi
}

cp -p "$config" "$last_good"
mv -f "$candidate" "$config"
log "installed the new $config (checksum $checksum)"

if ! reload; then
	roll_back
	die "HAProxy did not start a worker with the new configuration"
fi
if ! seen=$(await_serving); then
	log "the new configuration does not serve within ${serve_timeout}s: $seen"
	roll_back
	die "the new configuration did not serve ($seen)"
fi
rm -f "$last_good"
log "HAProxy reloaded with configuration $checksum"
log "serving: $seen"
