#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool): runs of a plan side by side, one
# process each. Needs the pack in data/gpu/ and Keras wheels in .whl/ (the image has JAX but
# not Keras); writes $OUT/<run>/{results.json,*.weights.h5} and $OUT/device.log.
# Usage: bash benchmarks/recipe/gpu_device.sh PLAN DEADLINE_S [TIME_BOX_S] -- RUN [RUN ...]
#   time-boxed seeds: bash benchmarks/recipe/gpu_device.sh benchmarks/recipe/gpu_time_boxed.yaml 520 450 \
#                       -- gpu-seed42 gpu-seed7 gpu-seed1234
set -u
plan=$1; deadline=$2; shift 2
box=(); if [ "$1" != "--" ]; then box=(--time-box "$1" --epoch-step 10); shift; fi
shift    # the --
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"; } > /tmp/head.log 2>&1
pids=()
for run in "$@"; do
  mkdir -p "$OUT/$run"
  python3 -m emorec.training.standalone "$plan" --only "$run" --pack data/gpu/fer2013 --out "$OUT/$run" \
    --deadline "$deadline" "${box[@]}" > "/tmp/$run.log" 2>&1 &
  pids+=($!)
done
( while sleep 60; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) > /tmp/smi.log 2>&1 &
smi=$!
wait "${pids[@]}"
kill $smi
{ cat /tmp/head.log; echo "-- GPU use each minute"; cat /tmp/smi.log
  for run in "$@"; do echo "-- $run"; grep -E -i "==|probe|val accuracy|error|Traceback|skipped" "/tmp/$run.log" | head -20
                      tail -6 "/tmp/$run.log"; done
} > "$OUT/device.log"
cat "$OUT/device.log"
