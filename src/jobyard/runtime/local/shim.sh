#!/bin/sh
# jobyard per-job supervisor.
#
# Usage (run by `unshare --pid --mount ...` without --fork, so this shell stays in the host
# pid namespace while its first child becomes PID 1 of the job's new one):
#
#   shim.sh STATE_DIR WORKDIR MOUNT MV [CGROUP_PROCS ...] -- SETPRIV_ARGV...
#
# The child joins the job's cgroups (before any user code runs), mounts a private /proc,
# /dev/shm and /tmp, then execs SETPRIV_ARGV, which drops to the job user and execs the
# user's command as PID 1. This shell waits for it and records its status in
# STATE_DIR/exit (written to exit.tmp, then renamed): the shell's $? for the child, i.e.
# 128+N when a signal N ended it; 125 with STATE_DIR/launch-error when setup failed.
# Its own diagnostics go to STATE_DIR/shim.log, never into the job's output.
#
# Rules that keep this correct:
# - Nothing may fork before the child: the first process forked becomes PID 1.
# - Nothing may fork after the child ends: a pid namespace whose PID 1 died accepts no new
#   process, so the final rename is done by exec'ing mv.
# - User input only ever arrives as separate argv entries; nothing here is eval'ed.
set -u
state=$1 workdir=$2 mount=$3 mv=$4
shift 4
# A relative path keeps working after the child mounts a tmpfs over /tmp (this shell
# shares its mount namespace, and STATE_DIR may live under /tmp).
cd -- "$state" || exit 125
exec 2>>shim.log
# The supervisor must outlive stray signals; the child restores the defaults below (traps
# set by this shell, unlike dispositions inherited from its parent, can be reset).
trap '' HUP INT QUIT TERM PIPE
(
	trap - HUP INT QUIT TERM PIPE
	fail() {
		echo "$1" >"$state/launch-error"
		exit 125
	}
	while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
		echo 0 >"$1" || fail "cannot join the job's cgroup $1"
		shift
	done
	shift
	cd -- "$workdir" || fail "cannot enter the working directory $workdir"
	"$mount" -t proc -o nosuid,nodev,noexec proc /proc >&2 || fail "cannot mount /proc"
	if [ -d /dev/shm ]; then
		"$mount" -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm >&2 ||
			fail "cannot mount /dev/shm"
	fi
	# Last: it may hide STATE_DIR, which fail() writes to by its absolute path.
	"$mount" -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp >&2 || fail "cannot mount /tmp"
	unset OLDPWD # the supervisor's directory is none of the job's business
	exec 2>&1
	exec "$@"
)
echo "$?" >exit.tmp
exec "$mv" -f exit.tmp exit
