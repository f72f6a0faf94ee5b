#!/bin/sh
# kya's demo: what an agent meets and what its human does, step by step. `cargo xtask run`
# shows it (in the test VM, or on a host whose kernel runs BPF LSM programs) and the `demo`
# kernel test checks every step's output (tests/tests/vm/demo.rs): keep the captions, they
# are what it looks for.
#
# Everything the demo makes lives in $KYA_DEMO_DIR (default /tmp/kya-demo): a scratch home
# with a credential file in it, the config, the daemon's state and log. The only peer it
# reaches is a web server it starts itself on a loopback address.
# Usage: demo.sh [CONFIG]   (with CONFIG, the demo ends by checking that config)

demo=${KYA_DEMO_DIR:-/tmp/kya-demo}
# 127.0.0.0/8 is all loopback: 127.0.0.5 stands for "some other host" the agent wants.
peer=127.0.0.5:8080
metrics=127.0.0.1:9464

caption() {
	echo
	echo "== $*"
}

# Prints a command as a human would type it (with ~ for the demo's home), then runs it, its
# errors shown with its output as a terminal would.
run() {
	echo "demo\$ $*"
	eval "$*" 2>&1
	status=$?
	[ "$status" -eq 0 ] || echo "(exit status $status)"
}

# The id (r1, r2, ...) of the pending request of a kind (file, connect), from `kya pending`.
request_of_kind() {
	kya pending | awk -v kind="$1" '$3 == kind { print $1; exit }'
}

if kya status >/dev/null 2>&1; then
	echo "demo: a kya-agent already runs here; the demo starts its own (stop the other first)"
	exit 1
fi

# The scene: a home with an AWS key in it, and a web server on no allowlist.
rm -rf "$demo"
mkdir -p "$demo/home/.aws" "$demo/www" "$demo/state"
export HOME="$demo/home"
printf '[default]\naws_secret_access_key = demo-secret-key\n' >~/.aws/credentials
echo "hello from $peer" >"$demo/www/index.html"
# The built-in catalogue protects ~/.aws/credentials in every user's home already; the demo's
# home is a scratch directory, so the config names its file.
cat >"$demo/kya.toml" <<EOF
[[agents]]
name = "coder"
owner = "root"
[agents.files]
protect = ["$HOME/.aws/credentials"]
EOF
httpd -f -p "$peer" -h "$demo/www" &
server=$!

caption "kya-agent starts with one agent, coder (config: $demo/kya.toml, log: $demo/kya-agent.log)"
echo "demo\$ kya-agent --config $demo/kya.toml --state-dir $demo/state &"
KYA_LOG=warn kya-agent --config "$demo/kya.toml" --state-dir "$demo/state" \
	--metrics "$metrics" >"$demo/kya-agent.log" 2>&1 &
agent=$!
tries=0
until kya ps >/dev/null 2>&1; do
	if ! kill -0 "$agent" 2>/dev/null; then
		echo "demo: kya-agent exited before it was ready:"
		cat "$demo/kya-agent.log"
		exit 1
	fi
	tries=$((tries + 1))
	if [ "$tries" -ge 240 ]; then
		echo "demo: kya-agent did not answer \`kya ps\` within 2 minutes"
		exit 1
	fi
	sleep 0.5
done

caption "1. A human reads the credential file; the agent (kya run --agent coder) is refused"
run 'cat ~/.aws/credentials'
run 'kya run --agent coder -- cat ~/.aws/credentials'

caption "2. A human reaches $peer; the agent is refused (it is on no allowlist)"
run "wget -qO- http://$peer/"
run "kya run --agent coder -- wget -qO- http://$peer/"

caption "3. kya events: what was refused, to whom, and why"
run 'kya events'

caption "4. kya pending: each refusal a human could grant waits as a request"
run 'kya pending'
file_request=$(request_of_kind file)
peer_request=$(request_of_kind connect)

caption "5. Approved once: the agent's next read succeeds, the one after is refused"
run "kya approve $file_request --once --reason 'rotate the demo key'"
run 'kya run --agent coder -- cat ~/.aws/credentials'
run 'kya run --agent coder -- cat ~/.aws/credentials'

caption "6. Approved for 10 s: the agent reaches $peer until the kernel ends the grant"
run "kya approve $peer_request --for 10s"
run 'kya grants'
run "kya run --agent coder -- wget -qO- http://$peer/"
run 'sleep 11'
run "kya run --agent coder -- wget -qO- http://$peer/"

caption "7. /metrics: refusals, grant uses and approvals, per agent (series above 0)"
# The daemon reads the kernel's counters every second.
sleep 2
run "wget -qO- http://$metrics/metrics | grep -E '^kya_(denied|allowed_by_grant|approvals)_total' | grep -v ' 0\$'"

if [ $# -gt 0 ]; then
	caption "Your config, $1, as kya-agent reads it"
	run "kya-agent check-config $1"
fi

kill "$agent" "$server"
wait "$agent"
# The stopped daemon's programs keep enforcing until unloaded (see "Enforcement outlives the
# daemon" in the README): the demo leaves nothing behind.
kya-agent unload >/dev/null
echo
echo "== The demo ended."
