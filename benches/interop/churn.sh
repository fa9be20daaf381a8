#!/bin/sh
# Do links churn between liag and aggligator? One tunnel, three links, in a network namespace
# of its own (run as root): 20 s of 100-byte round trips every 250 ms, 50 MiB echoed, 20 s
# idle, one more round trip; then counts in liag's log the links added, removed, stalled and
# whose link test ran over. The figures of docs/cli.md ("Links do not churn") came from this.
#
#   benches/interop/churn.sh SERVER CLIENT     each of: liag agg9 agg10
#
# LIAG (default target/release/liag), AGG9 and AGG10 name the programs; aggligator's are
# built by hand: cargo install aggligator-util --version 0.18.12 (0.9) or 0.19.0 (0.10).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
LIAG=${LIAG:-$here/../../target/release/liag}
bin() {
    case $1 in
        liag) echo "$LIAG tunnel" ;;
        agg9) echo "${AGG9:?AGG9 names agg-tunnel 0.18.x}" ;;
        agg10) echo "${AGG10:?AGG10 names agg-tunnel 0.19.x}" ;;
        *) echo "unknown end $1" >&2; exit 2 ;;
    esac
}
server=$(bin "$1"); client=$(bin "$2")
ns=liag-churn-$$
out=$(mktemp -d)
ip netns add "$ns"
pids=
trap 'kill $pids 2>/dev/null || true; ip netns del "$ns"' EXIT
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip addr add 127.0.0.2/8 dev lo
in_ns ip addr add 127.0.0.3/8 dev lo
export RUST_LOG=liag_core=debug,liag_tokio=debug,liag_transports=debug
# Started with `ip netns exec` itself, which becomes the program, so `kill` reaches it.
ip netns exec "$ns" python3 "$here/churn_echo.py" > /dev/null 2>&1 & pids=$!
ip netns exec "$ns" $server server --tcp 5900 --port 7000 -n > "$out/server.log" 2>&1 &
pids="$pids $!"
sleep 0.5
ip netns exec "$ns" $client client --tcp 127.0.0.1:5900 --tcp 127.0.0.2:5900 \
    --tcp 127.0.0.3:5900 --port 7000:7100 --tcp-link-filter none -n > "$out/client.log" 2>&1 &
pids="$pids $!"
sleep 1
in_ns python3 "$here/churn_work.py" 7100 20 20
kill $pids 2>/dev/null || true
sleep 0.5
for end in server client; do
    log="$out/$end.log"
    echo "$end ($(basename "$log")): added $(grep -c 'link added' "$log" || true)," \
        "stalled $(grep -c 'link stalled' "$log" || true)," \
        "tests overdue $(grep -c 'test overdue' "$log" || true)," \
        "removed for a failure: $(grep 'liag_core::connection: link removed' "$log" | grep -vc 'closed by the peer' || true)"
done
echo "logs in $out"
