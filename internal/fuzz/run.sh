#!/usr/bin/env bash
# Long fuzzing of every Fuzz target of the module, one after the other.
# Not run by CI, which runs each target briefly (see .ci/run); run this
# before a release, or after changing a parser of untrusted bytes:
#
#   bash internal/fuzz/run.sh                 # every target, 5 minutes each
#   bash internal/fuzz/run.sh -t 30s          # a quick pass
#   bash internal/fuzz/run.sh -t 1h Ed25519   # targets whose name matches
#   bash internal/fuzz/run.sh -k              # also keep the corpus grown
#
# -t DURATION  how long each target runs (a go test -fuzztime value:
#              5m, 30s, 1h, or an execution count such as 200000x);
#              default $FUZZTIME, else 5m.
# -k           copy every input the fuzzer found interesting (its
#              generated corpus, kept in the Go build cache) into the
#              package's testdata/fuzz/<Target>, so that `go test` replays it
#              from then on. Without -k only failing inputs land there, as go
#              test writes them. Commit such inputs only when they found a bug.
# PATTERN      an extended regular expression on target names.
#
# A failing input is written by go test to testdata/fuzz/<Target>/<hash> of
# its package; `go test -run '<Target>/<hash>' ./<pkg>` replays it. The
# script goes on with the other targets and exits 1 at the end if any failed.
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with "context
# deadline exceeded" at the deadline without any failing input
# (golang/go#75804, fixed in Go 1.27): such a run counts as passed when it
# wrote no failing input.
set -uo pipefail
cd "$(dirname "$0")/../.."

fuzztime="${FUZZTIME:-5m}"
keep=false
while getopts "t:kh" opt; do
	case "$opt" in
	t) fuzztime="$OPTARG" ;;
	k) keep=true ;;
	*) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
pattern="${1:-.}"

cache="$(go env GOCACHE)/fuzz"
failed=()
ran=0
# The packages of this module only: a nested module (internal/bench) is not
# part of ./... and has no Fuzz targets.
while read -r pkg dir; do
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		[[ "$target" =~ $pattern ]] || continue
		ran=$((ran + 1))
		printf '\n=== %s %s, %s\n' "$pkg" "$target" "$fuzztime"
		before=$(ls "$dir/testdata/fuzz/$target" 2>/dev/null | wc -l)
		log=$(mktemp)
		go test -run '^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$log" | grep --line-buffered -v '^fuzz: elapsed'
		status=${PIPESTATUS[0]}
		grep '^fuzz: elapsed' "$log" | tail -n 1
		after=$(ls "$dir/testdata/fuzz/$target" 2>/dev/null | wc -l)
		if [ "$status" -ne 0 ]; then
			if [ "$after" -eq "$before" ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "(deadline error of golang/go#75804, no failing input: counted as passed)"
			else
				failed+=("$pkg $target")
			fi
		fi
		rm -f "$log"
		if $keep && [ -d "$cache/$pkg/$target" ]; then
			mkdir -p "$dir/testdata/fuzz/$target"
			cp -n "$cache/$pkg/$target"/* "$dir/testdata/fuzz/$target/" 2>/dev/null || true
			echo "kept $(ls "$dir/testdata/fuzz/$target" | wc -l) inputs in $dir/testdata/fuzz/$target"
		fi
	done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)

printf '\n=== %d targets run, %d failed\n' "$ran" "${#failed[@]}"
for f in "${failed[@]}"; do
	echo "FAIL $f"
done
[ "$ran" -gt 0 ] && [ "${#failed[@]}" -eq 0 ]
