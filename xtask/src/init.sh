#!/bin/sh
# PID 1 of kya's test VM (packed by xtask/src/initramfs.rs). Mounts what kya needs, runs
# /kya/command.sh, prints the exit-status marker the host waits for, and powers off.
# Problems are printed rather than fatal: the host shows the console when the command fails.

export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root KYA_IN_VM=1
# The console is a terminal to the guest but ends up in logs and CI output on the host.
export NO_COLOR=1

mnt() { # mnt TYPE DIR [mount options...]
	type=$1 dir=$2
	shift 2
	mkdir -p "$dir" && mount -t "$type" "$@" "$type" "$dir" || echo "init: could not mount $type on $dir"
}

mnt devtmpfs /dev
# The kernel may have found no /dev/console to give PID 1; devtmpfs has one.
exec </dev/console >/dev/console 2>&1
mnt devpts /dev/pts
mnt proc /proc
mnt sysfs /sys
mnt securityfs /sys/kernel/security
mnt bpf /sys/fs/bpf
mnt cgroup2 /sys/fs/cgroup
# Only tracing tests need it, and a kernel without tracefs is still worth testing on.
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mnt tmpfs /tmp -o mode=1777
mnt tmpfs /run -o mode=755
mnt tmpfs /var/lib -o mode=755

# Without loopback, connect() to 127.0.0.1 or ::1 fails with ENETUNREACH. The kernel gives lo
# ::1 when it comes up; add it by hand if this kernel did not.
ip link set lo up
ip -6 addr show dev lo | grep -q 'inet6 ::1/128' || ip addr add ::1/128 dev lo
# The kernel draws its connection-hash secrets at the first connection and then rewrites that
# code (a once-only static key, switched off from a work item). Under QEMU's software emulation
# a vCPU running the code while another rewrites it can take a stray breakpoint (seen: an int3
# Oops in inet6_ehashfn during a test's first IPv6 connection). Make the first connections here,
# before anything runs, and give the rewrite time to end.
nc -w 1 127.0.0.1 9 </dev/null >/dev/null 2>&1
nc -w 1 ::1 9 </dev/null >/dev/null 2>&1
sleep 1

hostname kya-vm
chmod 700 /root
chown 1000:1000 /home/alice
chown 1001:1001 /home/coder
chown 1002:1002 /home/bob

cd /root
# The host retries a boot that dies before this line: nothing of the command has run yet.
echo "KYA-VM-COMMAND-START"
# No input: a command that reads stdin gets EOF instead of hanging until the timeout.
sh /kya/command.sh </dev/null
status=$?

echo "KYA-VM-EXIT-STATUS=$status"
# The serial driver sends console output after write() returns; give it time to drain, or the
# power-off can swallow the marker.
sleep 1
poweroff -f
