#!/bin/sh
# `cargo xtask run` on a host whose kernel cannot run BPF LSM programs: the same agent, shown in
# the test VM (packed by xtask/src/run.rs). Usage: demo.sh [CONFIG]

step() {
	echo
	echo "demo\$ $*"
}

if [ $# -gt 0 ]; then
	step "kya-agent --config $1 &"
	kya-agent --config "$1" &
else
	step "kya-agent &    (embedded default config)"
	kya-agent &
fi
agent=$!

# The agent answers `kya ps` once its programs are loaded and its control socket listens.
tries=0
until kya ps >/dev/null 2>&1; do
	if ! kill -0 "$agent" 2>/dev/null; then
		wait "$agent"
		echo "demo: kya-agent exited with status $? before it was ready"
		exit 1
	fi
	tries=$((tries + 1))
	if [ "$tries" -ge 40 ]; then
		echo "demo: kya-agent did not answer \`kya ps\` within 20 s"
		exit 1
	fi
	sleep 0.5
done

status=0
step "kya run --agent coder -- sleep 30 &"
kya run --agent coder -- sleep 30 &
tagged=$!
sleep 1
step "kya ps"
kya ps || status=1

step "sleep 30 &    (not started through kya: untagged)"
sleep 30 &
plain=$!
sleep 1
step "kya ps    (still only the first sleep)"
kya ps || status=1

kill "$tagged" "$plain" 2>/dev/null
kill "$agent"
wait "$agent"
exit $status
