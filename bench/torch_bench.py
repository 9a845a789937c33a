"""The PyTorch side of `npm run bench`: the same workloads, same sizes, Adam, cross-entropy, batch 64.

Prints JSON: {workload: {epochSeconds, inferSeconds, samples}}. Run by bench/bench.ts when Debian's
python3-torch is installed:  python3 bench/torch_bench.py --threads 1 --repeats 3 (or --serve)
"""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument('--threads', type=int, default=1)
p.add_argument('--repeats', type=int, default=3)
p.add_argument('--device', default='cpu', help="torch device, e.g. cuda (a GPU at hand; the bench itself uses cpu)")
p.add_argument('--serve', action='store_true',
               help='read "WORKLOAD THREADS" lines on stdin and answer each with a JSON line (bench.ts keeps one warm process)')
args = p.parse_args()
torch.manual_seed(0)
device = torch.device(args.device)


def sync():
    # CUDA runs asynchronously: a timer read without this would measure the launches, not the work.
    if device.type == 'cuda':
        torch.cuda.synchronize()


def cnn32():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 8 * 8, 2))


def mlp():
    return nn.Sequential(nn.Linear(24, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 2))


def demo_cnn():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))


WORKLOADS = {
    'cnn32': (cnn32, (3, 32, 32), 2, 512),
    'mlp': (mlp, (24,), 2, 4096),
    'demo-cnn': (demo_cnn, (3, 28, 28), 10, 1024),
}

def bench(name, repeats):
    build, shape, classes, n = WORKLOADS[name]
    model = build().to(device)
    x = torch.rand(n, *shape).to(device)
    y = (torch.arange(n) % classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(n, device=device)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        sync()

    epoch()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        model(x[:256])
        infer = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, n, 256):
                model(x[i:i + 256])
            sync()
            infer.append(time.perf_counter() - t0)
    return {'epochSeconds': statistics.median(times), 'inferSeconds': statistics.median(infer), 'samples': n}


# Warm on every workload first: a fresh process measured its first workload up to 5x slower than one
# that had run the others before it (cnn32: 0.51 against 0.10 s an epoch).
for name in WORKLOADS:
    bench(name, 1)
if args.serve:
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        name, threads = line.split()
        torch.set_num_threads(int(threads))
        print(json.dumps({name: bench(name, args.repeats)}), flush=True)
else:
    torch.set_num_threads(args.threads)
    print(json.dumps({name: bench(name, args.repeats) for name in WORKLOADS}))
