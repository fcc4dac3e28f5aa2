#!/usr/bin/env python3
"""PyTorch reference for `tinycats bench classifier-step`: the same classifier tail
(EfficientNet-Lite0 block 15 + head conv + dropout + 13-way linear, on 192x7x7 cached features),
same batch, AdamW, label-smoothed cross-entropy, fp32 (or bf16 autocast on CUDA with --bf16).
Prints one JSON line per variant: {"variant", "images_per_s", "step_s", "threads", "device", "torch"}."""
import argparse, json, time

import torch
import torch.nn as nn


def conv_bn(cin, cout, k, groups=1, act=True, frozen_bn=False):
    layers = [nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=frozen_bn)]
    if not frozen_bn:
        layers.append(nn.BatchNorm2d(cout, eps=1e-3))
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class Tail(nn.Module):
    def __init__(self, frozen_bn, classes=13):
        super().__init__()
        self.expand = conv_bn(192, 1152, 1, frozen_bn=frozen_bn)
        self.dw = conv_bn(1152, 1152, 3, groups=1152, frozen_bn=frozen_bn)
        self.project = conv_bn(1152, 320, 1, act=False, frozen_bn=frozen_bn)
        self.head = conv_bn(320, 1280, 1, frozen_bn=frozen_bn)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        h = self.project(self.dw(self.expand(x)))
        h = self.head(h).mean((2, 3))
        return self.fc(self.drop(h))


def bench(frozen_bn, a):
    dev = torch.device(a.device)
    torch.manual_seed(0)
    m = Tail(frozen_bn).to(dev).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
    lossf = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(a.batch, 192, 7, 7, device=dev)
    y = torch.randint(0, 13, (a.batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.bf16):
            loss = lossf(m(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(3):
        step()
    if a.device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    if a.device == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / a.steps
    return {"variant": "frozen_bn" if frozen_bn else "bn", "images_per_s": a.batch / dt, "step_s": dt,
            "threads": torch.get_num_threads(), "device": a.device, "bf16": a.bf16, "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for frozen in (False, True):
        print(json.dumps(bench(frozen, a)), flush=True)


if __name__ == "__main__":
    main()
