#!/bin/sh
# Bulk both ways at once through the CLI on real kernel paths, beside one way at a time and
# beside plain TCP. Two network namespaces joined by veth paths shaped with tbf (latency 50 ms,
# burst 16 KiB) to RATES Mbit/s (default "40 20 10"), the same both ways unless UP gives the
# client's sending rate on every path (an asymmetric access link: UP=1 RATES=40). Runs
# `liag speed` (the release build, or LIAG) receiving only, sending only and both ways, then
# iperf3 over every path at once the same three ways (one connection per path and direction),
# and prints Mbit/s received and sent by the client, with the largest round trip liag's links
# reported. With DELAY set (above 0), every path also delays each packet DELAY ms each way (a
# round trip of twice that beside the queue): TUN devices (/dev/net/tun) joined by `delayline`
# (from liag-benches, or DELAYLINE) rather than veth, for kernels without netem. Needs root
# (`ip netns`, `tc`); the plain TCP rows need iperf3 3.7 or later and are left out without it.
# docs/performance.md ("Both ways at once") has what it printed.
#
#   cargo build --release -p liag-cli && sudo benches/both_ways.sh [SECS]
#   sudo UP=1 RATES=40 benches/both_ways.sh 8
#   cargo build --release -p liag-cli -p liag-benches && sudo DELAY=10 benches/both_ways.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
LIAG=${LIAG:-$here/../target/release/liag}
T=${1:-10}
RATES=${RATES:-40 20 10}
DELAY=${DELAY:-}
[ "$DELAY" != 0 ] || DELAY=
DELAYLINE=${DELAYLINE:-$here/../target/release/delayline}
[ -x "$LIAG" ] || { echo "both_ways.sh: no $LIAG; build it first" >&2; exit 2; }
[ -z "$DELAY" ] || [ -x "$DELAYLINE" ] ||
    { echo "both_ways.sh: no $DELAYLINE; build it first" >&2; exit 2; }
c=liag-both-$$-c s=liag-both-$$-s
out=
lines=
cleanup() {
    # The delay lines run outside the namespaces.
    [ -z "$lines" ] || kill $lines 2>/dev/null || true
    for ns in $c $s; do
        # Deleting a namespace does not end what runs in it.
        ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del $ns 2>/dev/null || true
    done
    [ -z "$out" ] || rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
out=$(mktemp -d)
ip netns add $c
ip netns add $s
ip -n $c link set lo up
ip -n $s link set lo up
i=0 targets=
for rate in $RATES; do
    if [ -n "$DELAY" ]; then
        "$DELAYLINE" $c c$i $s s$i "$DELAY" >"$out/line$i" 2>&1 &
        lines="$lines $!"
        n=0
        until grep -q ready "$out/line$i"; do
            n=$((n + 1))
            if [ $n -ge 50 ] || ! kill -0 $! 2>/dev/null; then
                echo "delayline failed:" >&2
                cat "$out/line$i" >&2
                exit 1
            fi
            sleep 0.1
        done
    else
        ip link add c$i netns $c type veth peer name s$i netns $s
    fi
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
echo "$paths path(s): $RATES Mbit/s to the client, ${UP:-the same} from it;" \
    "${DELAY:-no} ms of delay each way; ${T} s each;" \
    "congestion control $(ip netns exec $c sysctl -n net.ipv4.tcp_congestion_control)"

# The first top-level figure of `liag speed --json` (it comes before the links'), in Mbit/s.
figure() {
    grep -o "\"$1\": [0-9.e+-]*" "$2" | head -1 | awk '{printf "%.2f", $2 * 8 / 1e6}'
}

ip netns exec $s "$LIAG" speed server --tcp 5800 >/dev/null 2>&1 &
sleep 1
for way in "-r receive" "-s send" "- both"; do
    flag=${way%% *} name=${way#* }
    [ "$flag" = - ] && flag=
    # shellcheck disable=SC2086
    timeout $((T + 30)) ip netns exec $c "$LIAG" speed client $targets $flag -n -j -t "$T" \
        >"$out/liag" 2>"$out/liag.err" ||
        { echo "liag speed client failed:" >&2; cat "$out/liag.err" >&2; exit 1; }
    rtt=$(grep -o '"rtt_ms": [0-9.e+-]*' "$out/liag" | awk '$2 > m {m = $2} END {printf "%.0f", m}')
    echo "liag, $name: received $(figure recv_speed "$out/liag"), sent" \
        "$(figure send_speed "$out/liag") Mbit/s; links' round trip up to $rtt ms"
done
ip netns pids $s | xargs -r kill

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
    sleep 1
    i=0 clients=
    while [ $i -lt "$paths" ]; do
        # shellcheck disable=SC2086
        timeout $((T + 30)) ip netns exec $c iperf3 -c 10.8.$i.1 -p $((5201 + i)) -t "$T" -f m \
            $flag >"$out/tcp$i" 2>&1 &
        clients="$clients $!"
        i=$((i + 1))
    done
    for pid in $clients; do
        wait "$pid" || { echo "iperf3 failed:" >&2; cat "$out"/tcp* >&2; exit 1; }
    done
    ip netns pids $s | xargs -r kill 2>/dev/null || true
    cat "$out"/tcp* | awk -v way="$name" '
        / receiver$/ {
            for (f = 1; f <= NF; f++) if ($f == "Mbits/sec") rate = $(f - 1)
            if ($0 ~ /RX-C/ || (way == "receive")) rx += rate; else tx += rate
        }
        END { printf "plain TCP, %s: received %.2f, sent %.2f Mbit/s\n", way, rx, tx }'
    rm -f "$out"/tcp*
done
