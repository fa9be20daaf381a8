#!/bin/sh
# Bulk both ways at once through the CLI on real kernel paths, beside one way at a time and
# beside plain TCP. Two network namespaces joined by veth paths shaped with tbf (50 ms of queue)
# to RATES Mbit/s (default "40 20 10"), the same both ways unless UP gives the client's sending
# rate on every path (an asymmetric access link: UP=0.5 RATES=40). Runs `liag speed` (the
# release build) receiving only, sending only and both ways, then iperf3 over every path at
# once the same three ways (one connection per path and direction, the system's congestion
# control), and prints Mbit/s received and sent by the client. Needs root (`ip netns`); the
# iperf3 rows need iperf3 and are left out without it. docs/performance.md ("Both ways at
# once") has what it printed.
#
#   cargo build --release -p liag-cli && benches/both_ways.sh [SECS]
#   UP=0.5 RATES=40 benches/both_ways.sh 8
set -eu
here=$(cd "$(dirname "$0")" && pwd)
LIAG=${LIAG:-$here/../target/release/liag}
T=${1:-10}
RATES=${RATES:-40 20 10}
c=liag-both-c s=liag-both-s
out=
cleanup() {
    kill "${SP:-}" 2>/dev/null || true
    ip netns del $c 2>/dev/null || true
    ip netns del $s 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT
cleanup
out=$(mktemp -d)
ip netns add $c
ip netns add $s
ip -n $c link set lo up
ip -n $s link set lo up
i=0 targets=
for rate in $RATES; do
    ip link add c$i netns $c type veth peer name s$i netns $s
    ip -n $c addr add 10.8.$i.2/24 dev c$i
    ip -n $s addr add 10.8.$i.1/24 dev s$i
    ip -n $c link set c$i up
    ip -n $s link set s$i up
    ip netns exec $c tc qdisc add dev c$i root tbf rate "${UP:-$rate}mbit" burst 16kb latency 50ms
    ip netns exec $s tc qdisc add dev s$i root tbf rate "${rate}mbit" burst 16kb latency 50ms
    targets="$targets --tcp 10.8.$i.1:5800"
    i=$((i + 1))
done
paths=$i
echo "$paths path(s): $RATES Mbit/s to the client, ${UP:-the same} from it; ${T} s each"

# The first top-level figure of `liag speed --json`, in Mbit/s.
figure() {
    grep -o "\"$1\": [0-9.e+-]*" "$2" | head -1 | awk '{printf "%.2f", $2 * 8 / 1e6}'
}

ip netns exec $s "$LIAG" speed server --tcp 5800 >/dev/null 2>&1 &
SP=$!
sleep 1
for way in "-r receive" "-s send" "- both"; do
    flag=${way%% *} name=${way#* }
    [ "$flag" = - ] && flag=
    # shellcheck disable=SC2086
    ip netns exec $c "$LIAG" speed client $targets $flag -n -j -t "$T" >"$out/liag" 2>/dev/null ||
        { echo "liag speed client failed" >&2; exit 1; }
    echo "liag, $name: received $(figure recv_speed "$out/liag"), sent $(figure send_speed "$out/liag") Mbit/s"
done
kill $SP 2>/dev/null || true

command -v iperf3 >/dev/null || { echo "(no iperf3: plain TCP left out)"; exit 0; }
# Mbit/s of the receiver lines of iperf3's text reports: received by the client ([RX-C] or -R's
# receiver), and sent by it ([TX-C] or a plain run's receiver).
for way in "-R receive" "- send" "--bidir both"; do
    flag=${way%% *} name=${way#* }
    [ "$flag" = - ] && flag=
    i=0
    while [ $i -lt "$paths" ]; do
        ip netns exec $s iperf3 -s -1 -p $((5201 + i)) >/dev/null 2>&1 &
        i=$((i + 1))
    done
    sleep 0.5
    i=0
    while [ $i -lt "$paths" ]; do
        # shellcheck disable=SC2086
        ip netns exec $c iperf3 -c 10.8.$i.1 -p $((5201 + i)) -t "$T" -f m $flag >"$out/tcp$i" 2>&1 &
        i=$((i + 1))
    done
    wait
    cat "$out"/tcp* | awk -v way="$name" '
        / receiver$/ {
            for (f = 1; f <= NF; f++) if ($f == "Mbits/sec") rate = $(f - 1)
            if ($0 ~ /RX-C/ || (way == "receive")) rx += rate; else tx += rate
        }
        END { printf "plain TCP, %s: received %.2f, sent %.2f Mbit/s\n", way, rx, tx }'
    rm -f "$out"/tcp*
done
