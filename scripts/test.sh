#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite; extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/setup.sh"
cd "$here/.."
exec python -m pytest -n 2 -q "$@"
