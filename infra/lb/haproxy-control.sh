# shellcheck shell=bash disable=SC2154  # the including script sets the variables named below
# HAProxy's master and workers as apply-backends.sh and update-config.sh drive them: where its
# files are, the lock both scripts take, find the master, list its workers, reload, and start
# HAProxy when no master runs.
#
# Included, not run. infra/render_document.py puts this text in place of the line that sources
# it, so each script an LB receives (the SSM documents, the user data) is one file; run from
# infra/lb/ (tests, local use), the scripts source it from their own directory.
#
# The including script sets log() and die(). This sets, from the LBSIDE_* variables both scripts
# document: config, backends_file, pidfile (empty: systemd runs HAProxy), haproxy_bin,
# reload_timeout, socket (the admin socket).
#
# Why start and not only reload: when a worker fails at start-up (a configuration that passes
# `haproxy -c` but cannot run, such as a chroot to a missing directory), the master kills its
# workers and exits, HAProxy's default. A reload then signals nothing; whatever restores a
# configuration has to start HAProxy again.

config="${LBSIDE_HAPROXY_CONFIG:-/etc/haproxy/haproxy.cfg}"
backends_file="${LBSIDE_BACKENDS_FILE:-/etc/haproxy/backends.cfg}"
pidfile="${LBSIDE_HAPROXY_PIDFILE:-}"
# SSM Agent runs commands with its own PATH; Debian and Amazon Linux install haproxy in /usr/sbin.
haproxy_bin="${LBSIDE_HAPROXY_BIN:-$(command -v haproxy || printf /usr/sbin/haproxy)}"
reload_timeout="${LBSIDE_RELOAD_TIMEOUT:-10}"
socket="${LBSIDE_HAPROXY_SOCKET:-/run/haproxy/admin.sock}"

# One change to HAProxy at a time: a backend push and a configuration update both reload it, and
# the boot script's apply and a pushed one may overlap. Held on descriptor 9 until the script
# exits (start_haproxy keeps it from the daemon).
lock_haproxy() {
	exec 9>"$backends_file.lock"
	flock -w 60 9 || die "another apply holds $backends_file.lock"
}

# Bash cannot open a Unix socket; Python 3 is on every image that runs cloud-init (both images
# DEPLOY.md names). The system's own first: a python3 earlier on PATH may be a slow wrapper.
if [[ -x /usr/bin/python3 ]]; then python=/usr/bin/python3; else python=$(command -v python3); fi

# Runtime API commands, one per line on stdin, one connection per command (the socket's
# non-interactive mode); the answers on stdout.
readonly cli_program='
import socket, sys
try:
    for command in sys.stdin.read().splitlines():
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(30)
            connection.connect(sys.argv[1])
            connection.sendall(command.encode() + b"\n")
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                sys.stdout.buffer.write(data)
except OSError as error:
    sys.exit(f"admin socket {sys.argv[1]}: {error}")
'
cli() { "$python" -c "$cli_program" "$socket"; }

# A process that exited but was not reaped yet (a zombie) still answers `kill -0`: read its state.
running() {
	local line state
	[[ $1 =~ ^[1-9][0-9]*$ ]] || return 1
	IFS= read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	read -r state _ <<<"${line##*) }"
	[[ $state != Z ]]
}

master_pid() {
	local pid
	if [[ -n $pidfile ]]; then
		[[ -r $pidfile ]] || return 1
		IFS= read -r pid <"$pidfile" || return 1
	else
		pid=$(systemctl show --property MainPID --value haproxy) || return 1
	fi
	running "$pid" && printf '%s' "$pid"
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

# Starts HAProxy with the files as they are now, when no master runs, and waits for a worker.
start_haproxy() {
	local pid deadline output line status=0
	if [[ -n $pidfile ]]; then
		# The master's environment is this script's (the local stand-in's bind address and paths).
		# The daemon keeps the descriptors it is given: its output goes to a file, never to this
		# script's stdout, whose reader (SSM, a test) would wait for HAProxy to exit; and not
		# the lock both scripts hold on descriptor 9, which the next push would wait for.
		output=$(mktemp)
		"$haproxy_bin" -W -D -f "$config" -f "$backends_file" -p "$pidfile" </dev/null >"$output" 2>&1 9>&- ||
			status=$?
		while IFS= read -r line; do log "haproxy: $line"; done <"$output"
		rm -f "$output"
		((status == 0)) || return 1
	else
		# Restart=on-failure may have run out of tries while a bad file was in place.
		systemctl reset-failed haproxy 2>/dev/null || true
		systemctl restart haproxy || return 1
	fi
	deadline=$((SECONDS + reload_timeout))
	while ((SECONDS <= deadline)); do
		if pid=$(master_pid) && [[ -n $(workers_of "$pid") ]]; then
			log "started HAProxy (master $pid)"
			return 0
		fi
		sleep 0.05
	done
	log "HAProxy did not start a worker within ${reload_timeout}s"
	return 1
}

# A graceful reload in master-worker mode: the master re-reads both files and starts a new
# worker, the old one finishes its connections. Done once the master has a worker it did not
# have before; failed if the master exits (its new worker died) or no new worker appears. With
# no master running (first boot, or after such an exit) HAProxy is started instead.
reload() {
	local pid before after deadline
	if ! pid=$(master_pid); then
		log "no HAProxy master runs: starting HAProxy"
		start_haproxy
		return
	fi
	before=$(workers_of "$pid")
	if [[ -n $pidfile ]]; then
		kill -USR2 "$pid" || return 1
	else
		systemctl reload haproxy || return 1
	fi
	deadline=$((SECONDS + reload_timeout))
	while ((SECONDS <= deadline)); do
		if ! running "$pid"; then
			log "the HAProxy master exited while reloading (a worker failed to start)"
			return 1
		fi
		after=$(workers_of "$pid")
		if [[ -n $after ]] && [[ -n $(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after")) ]]; then
			return 0
		fi
		sleep 0.05
	done
	log "no new HAProxy worker within ${reload_timeout}s"
	return 1
}
