#!/bin/sh
# jobyard per-job supervisor.
#
# Usage (run by `unshare --pid --mount ...` without --fork, so this shell stays in the host
# pid namespace while its first child becomes PID 1 of the job's new one):
#
#   shim.sh WORKDIR MOUNT FSTAB [CGROUP_PROCS ...] -- SETPRIV_ARGV...
#
# Standard input is a memfd holding the job's environment as `export NAME='value'` lines.
# File descriptors 3, 4 and 5 are the rank's `exit` (preallocated: overwritten in place, so
# recording the end needs no free space), `shim.log` and `launch-error`, opened before
# `unshare` through the host's mount: this shell's writes keep working once the job's root
# is read-only, and no writer on the namespace's root mount stops it from becoming so.
#
# The child joins the job's cgroups (before any user code runs), makes the job's file
# system view listed in FSTAB (one `mount --all`: each mount program costs a few ms; see
# mounts.py), enters WORKDIR (inside the view), then execs SETPRIV_ARGV, which drops to the
# job user and execs `sh -c '. /dev/stdin ...'`: only then, unprivileged, is the job's
# environment read and the command exec'ed as PID 1. Everything that runs as root runs with
# the server's fixed environment, so a job cannot hand root programs an LD_PRELOAD, a locale
# path or the like.
#
# This shell waits for the child and records its status on fd 3: the shell's $? for the
# child, i.e. 128+N when a signal N ended it; 125 when setup failed, with the reason on
# fd 5. The runtime reads the file only once this shell has ended, so it needs no atomic
# rename. This shell's own diagnostics go to fd 4, never into the job's output.
#
# Rules that keep this correct:
# - Nothing may fork before the child: the first process forked becomes PID 1.
# - Nothing may fork after the child ends: a pid namespace whose PID 1 died accepts no new
#   process (so the exit status is written by a builtin).
# - User input only ever arrives as separate argv entries or, quoted by the server, in the
#   environment script that the unprivileged stage reads; nothing root runs is eval'ed.
# - No descriptor of the supervisor's reaches the job (3, 4 and 5 are closed before exec).
set -u
workdir=$1 mount=$2 fstab=$3
shift 3
exec 2>&4
# The supervisor must outlive stray signals; the child restores the defaults below (traps
# set by this shell, unlike dispositions inherited from its parent, can be reset).
trap '' HUP INT QUIT TERM PIPE
(
	trap - HUP INT QUIT TERM PIPE
	fail() {
		echo "$1" >&5
		exit 125
	}
	while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
		echo 0 >"$1" || fail "cannot join the job's cgroup $1"
		shift
	done
	shift
	# Reads FSTAB before mounting anything, so hiding the data dir is fine.
	"$mount" --all --no-mtab --internal-only --fstab "$fstab" >&2 ||
		fail "cannot mount the job's file system view"
	cd -- "$workdir" || fail "cannot enter the working directory $workdir"
	unset OLDPWD # the supervisor's directory is none of the job's business
	exec 2>&1 3>&- 4>&- 5>&-
	exec "$@"
)
echo "$?" >&3
