#!/bin/sh
# jobyard per-job supervisor.
#
# Usage (run by `unshare --pid --mount ...` without --fork, so this shell stays in the host
# pid namespace while its first child becomes PID 1 of the job's new one):
#
#   shim.sh STATE_DIR WORKDIR MOUNT FSTAB [CGROUP_PROCS ...] -- SETPRIV_ARGV...
#
# Standard input is a memfd holding the job's environment as `export NAME='value'` lines.
#
# The child joins the job's cgroups (before any user code runs), mounts the private /proc,
# /dev/shm and /tmp listed in FSTAB (one `mount --all`: each mount program costs a few ms),
# then execs SETPRIV_ARGV, which drops to the job user and execs `sh -c '. /dev/stdin ...'`:
# only then, unprivileged, is the job's environment read and the command exec'ed as PID 1.
# Everything that runs as root runs with the server's fixed environment, so a job cannot
# hand root programs an LD_PRELOAD, a locale path or the like.
#
# This shell waits for the child and records its status in STATE_DIR/exit: the shell's $?
# for the child, i.e. 128+N when a signal N ended it; 125 when setup failed, with the reason
# in STATE_DIR/launch-error. The runtime reads the file only once this shell has ended, so
# it needs no atomic rename. This shell's own diagnostics go to STATE_DIR/shim.log, never
# into the job's output.
#
# Rules that keep this correct:
# - Nothing may fork before the child: the first process forked becomes PID 1.
# - Nothing may fork after the child ends: a pid namespace whose PID 1 died accepts no new
#   process (so the exit status is written by a builtin).
# - User input only ever arrives as separate argv entries or, quoted by the server, in the
#   environment script that the unprivileged stage reads; nothing root runs is eval'ed.
set -u
state=$1 workdir=$2 mount=$3 fstab=$4
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
	# Opened now: after the mounts, a STATE_DIR under /tmp is hidden. Empty unless setup fails.
	exec 3>"$state/launch-error" || exit 125
	fail() {
		echo "$1" >&3
		exit 125
	}
	while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
		echo 0 >"$1" || fail "cannot join the job's cgroup $1"
		shift
	done
	shift
	cd -- "$workdir" || fail "cannot enter the working directory $workdir"
	# Reads FSTAB before mounting anything, so hiding STATE_DIR under the new /tmp is fine.
	"$mount" --all --no-mtab --internal-only --fstab "$fstab" >&2 ||
		fail "cannot mount the job's /proc, /dev/shm and /tmp"
	unset OLDPWD # the supervisor's directory is none of the job's business
	exec 2>&1 3>&-
	exec "$@"
)
echo "$?" >exit
