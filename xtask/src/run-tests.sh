#!/bin/sh
# Runs every test executable under /kya/tests inside the VM (written by xtask/src/test.rs).
# Arguments are passed to each executable (a test-name filter). One test at a time: tests start
# daemons that load programs into the one kernel they share.
# The BEGIN/END lines let the host tell a crashed executable from one that reported its results.

export RUST_BACKTRACE=1
echo "kernel $(uname -r), LSMs: $(cat /sys/kernel/security/lsm)"
status=0
for test in /kya/tests/*; do
	[ -e "$test" ] || continue # no test executables: the glob stayed unexpanded
	name=${test##*/}
	echo "KYA-TEST-BEGIN $name"
	"$test" --test-threads=1 "$@"
	code=$?
	echo "KYA-TEST-END $name $code"
	[ "$code" -eq 0 ] || status=1
done
exit $status
