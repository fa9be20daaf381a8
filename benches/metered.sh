#!/bin/sh
# A data allowance (`--cap`) through the CLI on real kernel paths: `liag speed` (the release
# build) between two network namespaces joined by two veth paths shaped with tbf to 100 Mbit/s,
# the second path's interface (c2) metered at CAP a day. Prints the speed test's lines, the
# allowance's count (liag_allowance_used_bytes) scraped every 250 ms in MB, and the state
# file. With DOWN=S the first path's interface is set down S seconds in and up 3 s later: the
# metered path carries everything meanwhile. Needs root (`ip netns`) and curl. The output in
# docs/cli.md ("Data allowances") came from this.
#
#   cargo build --release -p liag-cli && benches/metered.sh [SECS]
#   DOWN=3 CAP=20MB benches/metered.sh 10
set -eu
here=$(cd "$(dirname "$0")" && pwd)
LIAG=${LIAG:-$here/../target/release/liag}
T=${1:-6}
CAP=${CAP:-20MB}
command -v curl >/dev/null || { echo "metered.sh: needs curl" >&2; exit 2; }
c=liag-meter-c s=liag-meter-s
state=
cleanup() {
    kill "${SP:-}" "${CP:-}" "${WP:-}" 2>/dev/null || true
    ip netns del $c 2>/dev/null || true
    ip netns del $s 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT
cleanup
state=$(mktemp -d)
ip netns add $c
ip netns add $s
for i in 1 2; do
    ip link add c$i netns $c type veth peer name s$i netns $s
    ip -n $c addr add 10.9.$i.1/24 dev c$i
    ip -n $s addr add 10.9.$i.2/24 dev s$i
    ip -n $c link set c$i up
    ip -n $s link set s$i up
    ip netns exec $c tc qdisc add dev c$i root tbf rate 100mbit burst 64kb latency 20ms
    ip netns exec $s tc qdisc add dev s$i root tbf rate 100mbit burst 64kb latency 20ms
done
ip -n $c link set lo up
ip -n $s link set lo up
ip netns exec $s "$LIAG" speed server --tcp 5700 >/dev/null 2>&1 &
SP=$!
sleep 1
ip netns exec $c "$LIAG" speed client -n --tcp 10.9.1.2 --tcp 10.9.2.2 --cap "c2=$CAP/day" \
    --cap-state "$state/allowances.json" --metrics 127.0.0.1:9811 -t "$T" >"$state/out" 2>&1 &
CP=$!
(
    k=0
    while [ $k -lt $((T * 4 + 4)) ]; do
        sleep 0.25
        k=$((k + 1))
        used=$(ip netns exec $c curl -s 127.0.0.1:9811/metrics |
            awk '/^liag_allowance_used_bytes/ {print $2}')
        echo "$k ${used:-0}"
    done >"$state/scrape"
) &
WP=$!
if [ -n "${DOWN:-}" ]; then
    sleep "$DOWN"
    ip -n $c link set c1 down
    sleep 3
    ip -n $c link set c1 up
fi
wait $CP || true
wait $WP || true
grep -v '^liag: metrics' "$state/out"
echo "liag_allowance_used_bytes, MB, every 250 ms:"
awk '{printf "%.2fs %d  ", $1 / 4, $2 / 1e6} NR % 6 == 0 {print ""} END {print ""}' "$state/scrape"
cat "$state/allowances.json"
