#!/bin/sh
# ctest fabric_mpi_cli_np*: `trnsim cluster run` on one process and under `mpirun -np NP`
# prints the same JSON (output hashes, simulated times, collectives), host_seconds and the
# process count aside.
# usage: mpi_cli_compare.sh TRNSIM MPIEXEC NP PROGRAM CHIPS
set -eu
trnsim=$1 mpiexec=$2 np=$3 program=$4 chips=$5
filter() { grep -v -e '"host_seconds"' -e '"processes"'; }
one=$("$trnsim" cluster run "$program" --chips "$chips" --output-hash --json | filter)
many=$("$mpiexec" -np "$np" --oversubscribe "$trnsim" cluster run "$program" --chips "$chips" \
       --output-hash --json | filter)
if [ "$one" != "$many" ]; then
  echo "one process and $np MPI processes differ:"
  printf '%s\n' "$one" > one.json
  printf '%s\n' "$many" > many.json
  diff one.json many.json || true
  exit 1
fi
echo "$np MPI processes give the same bits and times as one: $(printf '%s\n' "$one" | grep -c output_hash) ranks"
