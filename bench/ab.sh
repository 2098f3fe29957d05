#!/usr/bin/env bash
# ab.sh runs the orders bench on two commits alternately, A B A B ..., each in a throwaway
# worktree with this checkout's bench/ (so both print the same figures), and prints the
# figures to compare: orders/s at saturation, the fixed-rate latency and CPU per order.
# Every run's output and CPU profile stay in the printed directory.
#
#	bench/ab.sh A B [ROUNDS] [bench flags...]   # default: 3 rounds, -only orders -duration 20s -rate 20
#
# This machine's speed drifts by more than most changes; read the pairs, not one run.
set -euo pipefail
a=${1:?usage: bench/ab.sh A B [ROUNDS] [bench flags...]}
b=${2:?usage: bench/ab.sh A B [ROUNDS] [bench flags...]}
rounds=${3:-3}
shift $(($# < 3 ? $# : 3))
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(-only orders -duration 20s -rate 20)

repo=$(git rev-parse --show-toplevel)
out=$(mktemp -d /tmp/msdemo-ab.XXXXXX)
cleanup() {
	for c in "$a" "$b"; do git -C "$repo" worktree remove --force "$out/wt-$c" 2>/dev/null || true; done
}
trap cleanup EXIT
for c in "$a" "$b"; do
	git -C "$repo" worktree add -q --detach "$out/wt-$c" "$c"
	rm -rf "$out/wt-$c/bench" && cp -r "$repo/bench" "$out/wt-$c/bench"
done
echo "runs in $out"
for r in $(seq 1 "$rounds"); do
	for c in "$a" "$b"; do
		(cd "$out/wt-$c" && go run ./bench "${flags[@]}" -pprof "$out/$c-$r.pprof" >"$out/$c-$r.txt" 2>&1) || {
			echo "$c run $r failed: $out/$c-$r.txt"
			continue
		}
		echo "== $c run $r"
		grep -E '^1  orders/s|^2  placed|CPU per order at|CPU during' "$out/$c-$r.txt" | sed 's/   */  /g' || true
	done
done
