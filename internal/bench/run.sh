#!/usr/bin/env bash
# run.sh regenerates the raw data of BENCHMARKS.md: every benchmark of the
# main module (verify, webhook, webhook/webhooktest, dispatch,
# dispatch/redisstore) and of this module (the peer comparison, and the
# loopback benchmark whose load generator is a separate process), COUNT times each
# (default 10), interleaved: each round runs every package once (-count 1)
# before the next round starts, so that a change in the machine's load
# lands on all of them alike rather than on one. Each test binary is built
# once and run from its package directory; one round of the loop is the
# same as running, in turn,
#
#   go test -run '^$' -bench . -benchmem -count 1 ./verify
#   (cd internal/bench && go test -run '^$' -bench . -benchmem -count 1)
#   go test -run '^$' -bench . -benchmem -count 1 ./webhook
#   go test -run '^$' -bench . -benchmem -count 1 ./webhook/webhooktest
#   go test -run '^$' -bench PendingFutures -benchtime 1x -benchmem -count 1 ./dispatch
#   go test -run '^$' -bench 'DeliverLatency|BenchmarkDeliver$' -benchtime 200000x -benchmem -count 1 ./dispatch
#   go test -run '^$' -bench MemoryStore -benchmem -count 1 ./dispatch
#   go test -run '^$' -bench Resolve -benchmem -count 1 ./dispatch
#   go test -run '^$' -bench . -benchmem -count 1 ./dispatch/redisstore
#
# The redisstore benchmarks need redis-server on PATH (or REDIS_URL); they
# are skipped without it. Then benchstat summarises each file, and compares
# each benchmark with its floor and with the peer libraries by renaming
# both to one name in two files (see compare below).
#
# Usage: internal/bench/run.sh   (COUNT=6 OUT=/tmp/raw to change either)
# Needs: go, and benchstat (go install golang.org/x/perf/cmd/benchstat@latest).
set -uo pipefail
COUNT=${COUNT:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-$here/raw}
benchstat=${BENCHSTAT:-$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
mkdir -p "$out"
rm -f "$out"/*.txt

"$here/cpu.sh" > "$out/cpu.txt"
cat "$out/cpu.txt"

# name | package dir (relative to root) | extra go test flags | bench regexp
jobs=(
	"verify|verify||."
	"peers|internal/bench||."
	"webhook|webhook||."
	"webhooktest|webhook/webhooktest||."
	"dispatch-futures|dispatch|-test.benchtime=1x|PendingFutures"
	"dispatch|dispatch|-test.benchtime=200000x|DeliverLatency|BenchmarkDeliver\$"
	"dispatch-store|dispatch||MemoryStore"
	"dispatch-resolve|dispatch||Resolve"
	"redisstore|dispatch/redisstore||."
)

declare -A built
for j in "${jobs[@]}"; do
	IFS='|' read -r name dir _ <<<"$j"
	[[ -n ${built[$dir]:-} ]] && continue
	exe="$bin/${dir//\//_}.test"
	if (cd "$root/$dir" && go test -c -o "$exe" .) >"$bin/build.log" 2>&1; then
		built[$dir]=$exe
	else
		built[$dir]=none
		cp "$bin/build.log" "$out/build-${dir//\//_}.log"
		echo "build of $dir failed; its benchmarks are skipped (see $out/build-${dir//\//_}.log)" >&2
	fi
done

start=$(date +%s)
for round in $(seq 1 "$COUNT"); do
	echo "round $round/$COUNT  $(date -u +%H:%M:%S)  load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"
	for j in "${jobs[@]}"; do
		IFS='|' read -r name dir flags re <<<"$j"
		exe=${built[$dir]}
		[[ $exe == none ]] && continue
		(cd "$root/$dir" && "$exe" -test.run '^$' -test.bench "$re" -test.benchmem -test.count 1 $flags) \
			>>"$out/$name.txt" 2>>"$out/$name.err"
	done
done
echo "end  $(date -u +%H:%M:%S)  load $(cut -d' ' -f1-3 /proc/loadavg)  wall $(( $(date +%s) - start ))s" | tee -a "$out/load.txt"

find "$out" -name '*.err' -empty -delete
for j in "${jobs[@]}"; do
	IFS='|' read -r name _ <<<"$j"
	[[ -s $out/$name.txt ]] && (cd "$out" && "$benchstat" "$name.txt" >"$name.benchstat")
done

# pick FILE REGEXP NEWNAME: the results of benchmark REGEXP (a full name
# without the -GOMAXPROCS suffix) renamed NEWNAME, with the file's goos,
# goarch and cpu lines (not pkg, so that files of different packages share
# one table).
pick() {
	grep -E '^(goos|goarch|cpu):' "$1" | sort -u
	grep -E "^$2-[0-9]+[[:space:]]" "$1" | sed -E "s#^$2-#$3-#"
}
# compare TITLE NAME [LABEL FILE REGEXP]...: one benchstat table whose
# columns are the LABELs, the first being the base of the ratios.
compare() {
	local title=$1 name=$2 args=()
	shift 2
	while (($#)); do
		pick "$out/$2.txt" "$3" "$name" >"$bin/$1.txt"
		args+=("$1=$bin/$1.txt")
		shift 3
	done
	{
		echo "### $title"
		"$benchstat" "${args[@]}"
		echo
	} >>"$out/compare.benchstat"
}
: >"$out/compare.benchstat"
for s in 256B 1KiB 16KiB; do
	compare "verify HMAC vs bare HMAC-SHA256, $s" "BenchmarkHMAC/$s" \
		floor verify "BenchmarkHMACFloor/$s" verify verify "BenchmarkVerifyHMAC/$s"
done
for k in key1 key2 key3; do
	compare "v1a verify (genuine, signed by $k of 3, warm) vs bare ed25519.Verify, 1KiB" "BenchmarkEd25519/$k/1KiB" \
		floor verify BenchmarkEd25519Floor verify verify "BenchmarkVerifyEd25519/signer=$k/body=1KiB"
done
compare "v1a verify (genuine, signed by key3 of 3, warm) vs bare ed25519.Verify, 64KiB" BenchmarkEd25519/key3/64KiB \
	floor verify BenchmarkEd25519Floor64KiB verify verify "BenchmarkVerifyEd25519/signer=key3/body=64KiB"
for s in 1KiB 64KiB; do
	compare "v1a forged (at most MaxEd25519Checks verifications) vs genuine, $s" "BenchmarkEd25519Delivery/$s" \
		genuine verify "BenchmarkVerifyEd25519/signer=key3/body=$s" forged verify "BenchmarkVerifyEd25519/signer=forged/body=$s"
done
compare "RS256 JWT verify vs bare rsa.VerifyPKCS1v15" BenchmarkRS256 \
	floor verify BenchmarkRSAFloor verify verify BenchmarkVerifyJWT
compare "1KiB HMAC delivery: floor, genaihook, Standard Webhooks, svix (internal/bench)" BenchmarkVerify1KiB \
	floor peers BenchmarkHMACFloor genaihook peers BenchmarkGenaihook \
	standardwebhooks peers BenchmarkStandardWebhooks svix peers BenchmarkSvix
for s in 153B 1KiB; do
	compare "in-process ServeHTTP: bare net/http handler vs webhook.Handler, $s" "BenchmarkServeHTTP/$s" \
		bare webhook "BenchmarkServeHTTPFloor/$s" handler webhook "BenchmarkServeHTTP/$s"
done
compare "dispatch: CPU per wait resolved by Deliver, from 1 vs 64 goroutines" BenchmarkResolve \
	1 dispatch-resolve "BenchmarkResolve/goroutines=1" 64 dispatch-resolve "BenchmarkResolve/goroutines=64"
for s in 153B 1KiB; do
	compare "loopback HTTP, load from a separate process: bare net/http handler vs webhook.Handler, $s (internal/bench)" "BenchmarkLoopback/$s" \
		bare peers "BenchmarkLoopback/bare/$s" handler peers "BenchmarkLoopback/handler/$s"
done
cat "$out/compare.benchstat"
