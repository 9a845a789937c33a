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


class ResBlock(nn.Module):
    """Keras' cifar10_resnet v1 block: conv-BN-relu-conv-BN + shortcut (1x1 stride-2 conv where it downsamples), relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout))
        self.shortcut = nn.Conv2d(cin, cout, 1, stride) if stride != 1 else nn.Identity()

    def forward(self, x):
        return torch.relu(self.shortcut(x) + self.body(x))


def resnet20():
    # 'same' padding of a stride-2 3x3 convolution on an even map pads bottom/right in Keras and both sides here:
    # the same work, shifted by one pixel.
    layers = [nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage in range(3):
        cout = 16 << stage
        for block in range(3):
            layers.append(ResBlock(cin, cout, 2 if stage > 0 and block == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))


def mobilenet(alpha=0.35):
    def bn_relu6(c):
        return [nn.BatchNorm2d(c), nn.ReLU6()]
    c = int(32 * alpha)
    layers = [nn.Conv2d(3, c, 3, 2, 1, bias=False), *bn_relu6(c)]
    for filters, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]:
        out = int(filters * alpha)
        layers += [nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), *bn_relu6(c), nn.Conv2d(c, out, 1, bias=False), *bn_relu6(out)]
        c = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


WORKLOADS = {
    'cnn32': (cnn32, (3, 32, 32), 2, 512),
    'mlp': (mlp, (24,), 2, 4096),
    'demo-cnn': (demo_cnn, (3, 28, 28), 10, 1024),
    'resnet20': (resnet20, (3, 32, 32), 10, 256),
    'mobilenet': (mobilenet, (3, 96, 96), 10, 128),
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
