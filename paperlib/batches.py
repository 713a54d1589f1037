"""What each training step sees: a deterministic, resumable order of global batches, and noise drawn for the global
batch. Under torchrun each rank takes a contiguous slice of both, so N processes see exactly what one process with
the same global batch sees."""

from __future__ import annotations

import itertools

import torch

from paperlib.config import ConfigError
from paperlib.data import DatasetError, InMemoryDataset
from paperlib.devices import DistInfo


class BatchStream:
    """Global batch number k covers images k*B ... (k+1)*B - 1 of an endless sequence of per-epoch permutations
    (seeded by seed and epoch); each rank takes its contiguous slice. Resuming at batch k reproduces the order."""

    def __init__(self, dataset, batch: int, seed: int, dist_info: DistInfo, device, num_workers: int = 0):
        if batch % dist_info.world:
            raise ConfigError(f"global batch {batch} is not divisible by the {dist_info.world} processes")
        self.dataset, self.batch, self.seed, self.dist, self.device = dataset, batch, seed, dist_info, device
        self.local = batch // dist_info.world
        self.num_workers = num_workers
        self._perm_epoch, self._perm = -1, None
        if isinstance(dataset, InMemoryDataset):  # small: kept on the device, so a batch is an index, not a copy
            self.images = torch.stack([dataset[i][0] for i in range(len(dataset))]).to(device)
            self.labels = torch.stack([dataset.onehot(i) for i in range(len(dataset))]).to(device)

    def _indices(self, k: int) -> list[int]:
        n = len(self.dataset)
        out = []
        for q in range(k * self.batch + self.dist.rank * self.local, k * self.batch + (self.dist.rank + 1) * self.local):
            epoch = q // n
            if epoch != self._perm_epoch:
                self._perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
                self._perm_epoch = epoch
            out.append(int(self._perm[q % n]))
        return out

    def batches(self, start: int):
        """Yield (images [b, C, R, R], labels [b, label_dim]) on the device from global batch ``start`` on."""
        if isinstance(self.dataset, InMemoryDataset):
            k = start
            while True:
                idx = torch.tensor(self._indices(k)).to(self.device, non_blocking=True)
                yield self.images[idx], self.labels[idx]
                k += 1
        else:
            sampler = (self._indices(k) for k in itertools.count(start))
            loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                                                 pin_memory=self.device.type == "cuda",
                                                 prefetch_factor=4 if self.num_workers else None,
                                                 persistent_workers=False)
            try:
                for images, labels in loader:
                    yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            except DatasetError as exc:  # a worker's error arrives with its traceback: keep the message alone
                raise DatasetError(str(exc).strip().splitlines()[-1].split("DatasetError: ", 1)[-1]) from None


class SharedNoise:
    """Draws noise for the global batch from one generator (identical on every rank) and returns this rank's slice,
    so that N processes see exactly the noise of one process with the same global batch."""

    def __init__(self, seed: int, dist_info: DistInfo, device):
        self.generator = torch.Generator(device).manual_seed(seed)
        self.dist, self.device = dist_info, device

    def __call__(self, shape) -> torch.Tensor:
        full = torch.randn(list(shape), generator=self.generator, device=self.device)
        local = shape[0] // self.dist.world
        return full[self.dist.rank * local:(self.dist.rank + 1) * local]
