#!/usr/bin/env bash
# The GPU suite as one command on the lent machine (bench/README.md): install the carried wheels (.whl/, made by
# `make gpu-carry`) without any network, then run bench/gpu_suite.py with that machine's own torch.
# Results go to $OUT (what the device tool brings back), else out/gpu_suite (ignored by git). Extra arguments pass through,
# e.g. `bash bench/gpu_suite.sh --parts infer,restore --total-seconds 240`.
set -uo pipefail
cd "$(dirname "$0")/.."
out_dir=${OUT:-out/gpu_suite}
site=/tmp/ladtalk-site
t0=$(date +%s.%N)
if [ -d .whl ] && ! cmp -s <(ls .whl) "$site/.installed" 2>/dev/null; then
    # --target + --no-deps: exactly the carried wheels, beside (not over) the machine's own packages
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
        || { echo "gpu_suite.sh: installing the carried wheels failed (see above)" >&2; exit 2; }
    ls .whl >"$site/.installed"
fi
install_s=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
export PYTHONPATH="$PWD/src:$site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import av, librosa, soxr, soundfile" || {
    echo "gpu_suite.sh: PyAV / librosa / soxr are not importable: carry .whl (run \`make gpu-carry\` here first)" >&2
    exit 2
}
echo "wheels ready in ${install_s} s; python3 is $(command -v python3)"
exec python3 bench/gpu_suite.py --out "$out_dir" --install-seconds "$install_s" "$@"
