#!/bin/sh
# What service mode costs on real kernel paths: `liag tunnel` (the release build) between two
# network namespaces joined by three unshaped veth paths, iperf3 through it, with and without
# `--metrics` on the server; then SIGTERM to the server in the middle of a transfer, timed to
# its exit. Needs root (`ip netns`) and iperf3. The figures of docs/performance.md ("Service
# mode") came from this.
#
#   cargo build --release -p liag-cli && benches/service.sh [RUNS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
LIAG=${LIAG:-$here/../target/release/liag}
RUNS=${1:-3}
command -v iperf3 >/dev/null || { echo "service.sh: needs iperf3" >&2; exit 2; }
a=liag-svc-a b=liag-svc-b
cleanup() {
    kill "${SP:-}" "${CP:-}" "${IS:-}" 2>/dev/null || true
    ip netns del $a 2>/dev/null || true
    ip netns del $b 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add $a
ip netns add $b
for i in 1 2 3; do
    ip link add va$i netns $a type veth peer name vb$i netns $b
    ip -n $a addr add 10.77.$i.1/24 dev va$i
    ip -n $b addr add 10.77.$i.2/24 dev vb$i
    ip -n $a link set va$i up
    ip -n $b link set vb$i up
done
ip -n $a link set lo up
ip -n $b link set lo up
ip netns exec $b iperf3 -s -p 5201 >/dev/null 2>&1 &
IS=$!

start() { # $@: the server's extra flags
    ip netns exec $b "$LIAG" tunnel server -p 5201 --tcp 5800 -n "$@" 2>/dev/null &
    SP=$!
    sleep 0.5
    ip netns exec $a "$LIAG" tunnel client -p 5201:15201 -n \
        --tcp 10.77.1.2 --tcp 10.77.2.2 --tcp 10.77.3.2 2>/dev/null &
    CP=$!
    sleep 0.7
}
stop() {
    kill -TERM $CP $SP 2>/dev/null || true
    wait $CP $SP 2>/dev/null || true
}
rate() { # iperf3 -t 5 through the tunnel, MB/s received
    ip netns exec $a iperf3 -c 127.0.0.1 -p 15201 -t 5 -J |
        sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | tail -1 |
        awk '{ printf "%.0f", $1 / 8e6 }'
}

run=1
while [ $run -le "$RUNS" ]; do
    start
    plain=$(rate)
    stop
    start --metrics 127.0.0.1:9810
    metered=$(rate)
    stop
    echo "run $run: iperf3 through the tunnel $plain MB/s; with --metrics $metered MB/s"
    run=$((run + 1))
done

start
ip netns exec $a iperf3 -c 127.0.0.1 -p 15201 -t 6 >/dev/null 2>&1 &
IP=$!
sleep 2
t0=$(date +%s%N)
kill -TERM $SP
status=0
wait $SP || status=$?
t1=$(date +%s%N)
echo "SIGTERM to the server 2 s into a transfer: exit status $status after $(((t1 - t0) / 1000000)) ms"
wait $IP 2>/dev/null || true
kill -TERM $CP
status=0
wait $CP || status=$?
echo "the client, SIGTERM afterwards: exit status $status"
