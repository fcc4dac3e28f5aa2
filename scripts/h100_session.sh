#!/bin/bash
# What the eleventh session ran on the lent H100 (docs/RESULTS.md, "On the H100"). Prepare the
# carried bundle here first (the working tree plus carried paths must stay under 64 MiB, so move the
# tracked models/ aside during the call):
#   CUDARC_CUDA_VERSION=13000 cargo build --release -p tinycats-cli --features cuda
#   strip -o /tmp/tc target/release/tinycats && xz -6 -c /tmp/tc > .gpu/tc.xz
#   224 px crops of data/pets/prepared/224-cats_other-crop as JPEG q80 in .gpu/pets/images/<stem>.jpg,
#   data/pets/annotations/list.txt in .gpu/pets/annotations/, and the EfficientNet-Lite0
#   safetensors with its unused ImageNet `_fc` zeroed, xz'd to .gpu/lite0.safetensors.xz.
# Then: device run `LIMIT=520 bash scripts/h100_session.sh` with carry [".gpu"]; later calls keep the
# machine warm while the detached jobs train, and copy runs/*/ema-*.safetensors to $OUT.
# This first call: unpack, benches vs PyTorch CUDA on an idle GPU, then the generator and the
# classifier full fine-tunes, both detached (setsid) so they outlive the call while the machine
# stays warm.
set -x
cd "$(dirname "$0")/.."  # repository root
T0=$(date +%s)
python3 -c "import lzma,shutil
for a,b in [('.gpu/tc.xz','.gpu/tc'),('.gpu/lite0.safetensors.xz','.gpu/lite0.safetensors')]:
    shutil.copyfileobj(lzma.open(a),open(b,'wb'))"
chmod +x .gpu/tc
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
lscpu | grep 'Model name'
TC=.gpu/tc
$TC data prepare .gpu/pets --size 64 --json | head -c 300; echo
$TC data prepare .gpu/pets --size 224 --json | head -c 300; echo
# benches first, on an idle GPU
$TC bench classifier-step --torch python3 --steps 50 --json > $OUT/bench-clf.json 2> $OUT/bench-clf.err; cat $OUT/bench-clf.json
$TC bench dit-step --torch python3 --steps 50 --json > $OUT/bench-dit.json 2>> $OUT/bench-clf.err; cat $OUT/bench-dit.json
$TC bench dit-step --torch python3 --steps 30 --batch 128 --json >> $OUT/bench-dit.json 2>> $OUT/bench-clf.err; tail -1 $OUT/bench-dit.json
G=(--config configs/generator.toml --store runs/gpu.db --set data.cache=.gpu/pets/prepared/64-cats_other-crop
   --set model.patch=4 --set model.hidden=256 --set model.depth=8 --set model.heads=4 --set train.batch_size=128
   --set schedule.kind=constant --set schedule.warmup_epochs=500 --set train.steps=200000
   --set train.checkpoint_every=500 --set predictions.every=2000)
# generator starts first so it gets the most time; it survives this call (setsid)
mkdir -p runs
setsid nohup $TC train generator "${G[@]}" --run-dir runs/gen-gpu > runs/gen-gpu.log 2>&1 < /dev/null &
sleep 1
C=(--config configs/classifier.toml --store runs/gpu-clf.db --set data.cache=.gpu/pets/prepared/224-cats_other-crop
   --set model.weights=.gpu/lite0.safetensors --set model.cut=0 --set features.views=4 --set train.epochs=15 --set optim.lr=3e-4)
# detached as well (setsid): the first attempt ran it as a plain child, and the end of the call killed it
cat > runs/clf-chain.sh <<CHAIN
$TC train classifier ${C[*]} --set model.freeze_bn=false --run-dir runs/clf-full-bn > runs/clf-full-bn.log 2>&1
$TC train classifier ${C[*]} --set model.freeze_bn=true --run-dir runs/clf-full-frozen > runs/clf-full-frozen.log 2>&1
CHAIN
setsid nohup bash runs/clf-chain.sh < /dev/null > /dev/null 2>&1 &
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
# wait for the classifier chain until LIMIT seconds (default 520) into the call
while pgrep -f "train classifier" > /dev/null && [ $(( $(date +%s) - T0 )) -lt ${LIMIT:-520} ]; do sleep 5; done
for r in clf-full-bn clf-full-frozen; do
  [ -d runs/$r ] && tar -cf $OUT/$r.tar --exclude='checkpoints/resume-*' --exclude='checkpoints/epoch-*' --exclude='*.mpk*' runs/$r runs/$r.log
done
tail -n 5 runs/clf-full-*.log
tail -c 1500 runs/gen-gpu.log; ls runs/gen-gpu runs/gen-gpu/samples 2>&1 | tail
ls -la $OUT
