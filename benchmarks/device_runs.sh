#!/usr/bin/env bash
# Train the theory experiments' large presets (issue "predict the answer"; the preset was named
# "full" when figures/predicted/ was made) on an accelerator in one call of the device tool, and
# send their results back compressed.
#
#   run(command="bash benchmarks/device_runs.sh", carry=[".whl"], timeout_s=580)
#
# .whl holds the netCDF4 and cftime wheels (cp312), which the device image lacks. Runs go in
# priority order under one time budget (BUDGET seconds, default 480); a run the budget cuts off
# is dropped (train it here with `jaxsym run`). The results are the same networks `jaxsym study
# --preset large` trains (same configs, overrides and run names), with the vmap strategy and
# 4096 networks per call: a network's result depends only on (config, grid point, seed), and
# identical units stay bitwise identical on every code path, so the device changes rounding-level
# digits only. Unpack here with `python benchmarks/device_unpack.py FILES...` (into runs/).
set -u
PRESET=${PRESET:-large}
BUDGET=${BUDGET:-480}
OUTDIR=${OUT:-/tmp/device_out}
mkdir -p "$OUTDIR" runs
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null
# the GPU kernel family's exactness (skipped on CPU-only machines)
timeout 120 python3 -m pytest tests/test_exact_symmetry.py -k gpu -q -p no:cacheprovider \
    -W ignore::DeprecationWarning 2>&1 | tail -4 | tee -a "$OUTDIR/log.txt"
deadline=$((SECONDS + BUDGET))

train() {  # train CONFIG RUN_NAME [--set KEY=VALUE ...]
    local config=$1 name=$2
    shift 2
    local left=$((deadline - SECONDS))
    if [ "$left" -lt 30 ]; then echo "SKIPPED $name (budget)"; return; fi
    local start=$SECONDS
    timeout "$left" python3 -m jaxsym run "experiments/$config.toml" --preset "$PRESET" \
        --out "runs/$name-$PRESET" --chunk-size 4096 --no-progress "$@" >>"$OUTDIR/log.txt" 2>&1
    echo "$name: rc=$? $((SECONDS - start)) s" | tee -a "$OUTDIR/log.txt"
}

train predict predict
train predict_circles predict_circles
train classify classify
train classify classify-circles --set task.name=circles
train classify classify-teacher_student-mse --set task.name=teacher_student --set 'grid.loss=["mse"]'
train predict predict-3 --set model.depth=3
for spec in "2 0.025 6000" "4 0.05 6000" "16 0.2 6000" "32 0.2 8000"; do
    set -- $spec
    train saddle_slope "saddle_slope-$1-$2-$3" --set model.width=$1 --set train.learning_rate=$2 \
        --set train.steps=$3
done
train saddle_slope saddle_slope
train zero_init zero_init
train zero_init zero_init-0 --set train.batch_size=0

# pack: every finished run's results.nc, zlib-compressed, into <= 7 parts of 15 MiB
python3 - "$OUTDIR" <<'EOF'
import glob, os, sys, tarfile
import xarray as xr
out = sys.argv[1]
os.makedirs("/tmp/pack", exist_ok=True)
names = []
for path in sorted(glob.glob("runs/*/results.nc")):
    name = os.path.basename(os.path.dirname(path))
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds.load().to_netcdf(f"/tmp/pack/{name}.nc", engine="netcdf4", encoding={
            v: {"zlib": True, "complevel": 6, "shuffle": True} for v in ds.data_vars})
    names.append(name)
    print(name, os.path.getsize(path) >> 10, "KiB ->", os.path.getsize(f"/tmp/pack/{name}.nc") >> 10)
with tarfile.open("/tmp/pack.tar", "w") as tar:
    for name in names:
        tar.add(f"/tmp/pack/{name}.nc", arcname=f"{name}.nc")
EOF
split -b 15m -d -a 1 /tmp/pack.tar "$OUTDIR/runs.tar.part"
ls -la "$OUTDIR"
