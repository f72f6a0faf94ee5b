#!/bin/sh
# Runs every test executable under /kya/tests inside the VM (written by xtask/src/test.rs).
# Arguments are passed to each executable (a test-name filter). One test at a time: tests start
# daemons that load programs into the one kernel they share.
# The BEGIN/END lines let the host tell a crashed executable from one that reported its results.
# `--report-time` prints each test's duration (`ok <1.234s>`), which the host ranks; it is one of
# libtest's unstable options, which RUSTC_BOOTSTRAP unlocks in a test built by stable Rust.

export RUST_BACKTRACE=1
echo "kernel $(uname -r), LSMs: $(cat /sys/kernel/security/lsm)"
status=0
for test in /kya/tests/*; do
	[ -e "$test" ] || continue # no test executables: the glob stayed unexpanded
	name=${test##*/}
	echo "KYA-TEST-BEGIN $name"
	RUSTC_BOOTSTRAP=1 "$test" --test-threads=1 -Z unstable-options --report-time "$@"
	code=$?
	echo "KYA-TEST-END $name $code"
	[ "$code" -eq 0 ] || status=1
done
exit $status
