#!/usr/bin/env bash
# cpu.sh prints what the benchmark page needs to know about this machine,
# read from /proc/cpuinfo at run time: the CPU model, the number of logical
# cores, and whether the SHA extensions (SHA-NI), AVX2 and AVX-512 are
# present, which decide how fast SHA-256 and hence HMAC verification run.
set -eu
info=/proc/cpuinfo
model=$(awk -F': ' '/^model name/ {print $2; exit}' "$info")
cores=$(grep -c '^processor' "$info")
flags=" $(awk -F': ' '/^flags/ {print $2; exit}' "$info") "
has() { case "$flags" in *" $1 "*) echo yes ;; *) echo no ;; esac; }
avx512=$(printf '%s\n' $flags | grep '^avx512' | sort | tr '\n' ' ')
echo "model name: ${model:-unknown}"
echo "logical cores: $cores"
echo "SHA-NI (sha_ni): $(has sha_ni)"
echo "AVX2 (avx2): $(has avx2)"
echo "AVX-512 (avx512f): $(has avx512f)${avx512:+ [${avx512% }]}"
echo "go: $(go version 2>/dev/null || echo unavailable)"
echo "kernel: $(uname -srm)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
