#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite; extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/setup.sh"
cd "$here/.."
# Two test processes on two cores: one BLAS/OpenMP thread each, or they fight for the cores.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec python -m pytest -n 2 -q "$@"
