"""A plain PyTorch script doing what `vae-course train --recipe matlab-2022` does, written the
way most VAE code is (pytorch/examples' vae/main.py): the yardstick of benchmarks/whole_process.py.

    python benchmarks/plain_train.py --data DIR --subset 12800 --epochs 1 --out DIR

It depends on torch and numpy only (no vae_course), so its start-up is what any script pays.
Same work as the command: read MNIST's .gz files, the MATLAB R2022b network (latent 16),
0.5*SSE + KL, Adam 1e-3, batch 128 shuffled with the partial batch dropped, the test ELBO
after every epoch, and a checkpoint (weights and optimizer) at the end.
"""
import argparse
import gzip
import struct
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def read_idx_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class Images(Dataset):
    """One uint8 image at a time to a float tensor in [0, 1], as torchvision's ToTensor."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].copy()).unsqueeze(0).float().div(255)


class VAE(nn.Module):
    def __init__(self, latent: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 2 * latent))
        self.project = nn.Linear(latent, 64 * 7 * 7)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, padding=1))

    def forward(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(self.project(z).view(-1, 64, 7, 7)), mu, logvar


def loss_function(logits, x, mu, logvar):
    sse = 0.5 * (torch.sigmoid(logits) - x).pow(2).sum(dim=(1, 2, 3))
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    return (sse + kl).mean()


def train_epoch(model, loader, optimizer):
    model.train()
    for x in loader:
        optimizer.zero_grad()
        loss = loss_function(*_unpack(model, x))
        loss.backward()
        optimizer.step()
    return loss.item()


def test_epoch(model, loader):
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x in loader:
            total += loss_function(*_unpack(model, x)).item() * len(x)
            n += len(x)
    return total / n


def _unpack(model, x):
    logits, mu, logvar = model(x)
    return logits, x, mu, logvar


def save_checkpoint(model, optimizer, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="folder with MNIST's four .gz files")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    train = read_idx_gz(args.data / "train-images-idx3-ubyte.gz")[:args.subset]
    test = read_idx_gz(args.data / "t10k-images-idx3-ubyte.gz")[:args.subset]
    train_loader = DataLoader(Images(train), batch_size=128, shuffle=True, drop_last=True)
    test_loader = DataLoader(Images(test), batch_size=1000)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        train_loss = train_epoch(model, train_loader, optimizer)
        test_loss = test_epoch(model, test_loader)
        print(f"epoch {epoch}: train {train_loss:.2f}, test {test_loss:.2f}, {time.perf_counter() - started:.1f} s")
    save_checkpoint(model, optimizer, args.out / "checkpoint.pt")


if __name__ == "__main__":
    main()
