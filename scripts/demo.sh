#!/usr/bin/env bash
# Set up .venv (idempotent) and run the end-to-end demo; extra arguments go to `polychrony demo`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/setup.sh"
cd "$here/.."
exec polychrony demo "$@"
