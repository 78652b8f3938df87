#!/usr/bin/env bash
# Damselfly vs plain HTTP (curl) vs BitTorrent (aria2): one origin -> N peers, one run.
# Needs root (network namespaces + tc) and the release binaries in target/release.
#   peer/benches/distribution/run.sh                 # default: F=256 MiB, N=8 and N=16
#   peer/benches/distribution/run.sh -F 32 -N 4      # quick run
# See README.md beside this script.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/distribution.py" "$@"
