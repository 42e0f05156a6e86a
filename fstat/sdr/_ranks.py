"""Ball ranks: per-centre orders, closed-ball counts, ball-end weights and ball kernels.

For a centre k the points sorted by distance from y_k give the order pi_k and sorted
distances s_k. Closed balls make every point tied with the boundary a member, so:

- the count of point i for centre k is c_ki = #{l : d_lk >= d_ik} = n - (first sorted index
  of i's tie group);
- the ball through boundary point l ends at the last sorted index of l's tie group; the
  ball-end weight W_kr counts the boundary points whose ball ends at sorted position r.

Routes: R1 (stable sort + searchsorted, generic), R2 (two pointers for scalar Euclidean
responses, same sorted distances bit for bit), R6 (class codes for the discrete metric),
sampled centres (R5). Integer quantities are built by integer scatter-adds, so CUDA
atomics add no floating-point noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["BallRanks", "ball_ranks", "counts_from_ranks", "kernel_from_counts",
           "u_kernel_from_counts", "u_center", "class_codes"]


def _chunk(n, device, width=1):
    """Rows per block so that a block holds at most ~2**20 (CPU) / 2**26 (CUDA) x width."""
    budget = 2**26 if torch.device(device).type == "cuda" else 2**20
    return max(1, min(n, int(budget // max(1, n * width))))


@dataclass
class BallRanks:
    """Orders and ball-end weights for a set of centres (chunked).

    Attributes
    ----------
    n : int
        Number of points.
    centers : LongTensor
        Centre indices (all n, or a sampled subset).
    chunks : list of (order, first, weight)
        ``order`` (c, n) int64 sorted point indices, ``first`` (c, n) int32 first index of
        the tie group at each sorted position, ``weight`` (c, n) int32 ball-end weights.
    """

    n: int
    centers: torch.Tensor
    chunks: list

    @property
    def n_centers(self):
        return len(self.centers)

    def to(self, device):
        chunks = [tuple(t.to(device) for t in chunk) for chunk in self.chunks]
        return BallRanks(self.n, self.centers.to(device), chunks)


def _interval_sort(y, centers):
    """R2: per-centre sorted distances of scalar data by two pointers (numpy, CPU).

    All centres advance in lock-step through the globally sorted data, taking the nearer
    neighbour (the left one on equal distance); distances are ``y_k - y_left`` and
    ``y_right - y_k``, the same floating-point values as ``|y_i - y_k|``.
    """
    n = len(y)
    g = np.argsort(y, kind="stable")
    padded = np.concatenate([[-np.inf], y[g], [np.inf]])  # index shift of one
    pos = np.empty(n, dtype=np.int64)
    pos[g] = np.arange(n)
    g_padded = np.concatenate([[0], g, [0]])
    yk = y[centers]
    left = pos[centers].copy()  # padded index of the next left candidate
    right = pos[centers] + 2  # padded index of the next right candidate
    order = np.empty((n, len(centers)), dtype=np.int64)  # step-major: contiguous writes
    dist = np.empty((n, len(centers)), dtype=np.float64)
    order[0] = centers
    dist[0] = 0.0
    for t in range(1, n):
        dl = yk - padded[left]
        dr = padded[right] - yk
        take_left = dl <= dr
        idx = np.where(take_left, left, right)
        order[t] = g_padded[idx]
        np.minimum(dl, dr, out=dist[t])
        left -= take_left
        right += ~take_left
    return dist.T, order.T


def _tie_groups(s, *, first=True):
    """First and last sorted index of each position's tie group (rows sorted ascending).

    Equivalent to ``searchsorted(s, s, "left")`` and ``searchsorted(s, s, "right") - 1``,
    by running maxima/minima of the group boundaries (linear time).
    """
    c, n = s.shape
    positions = torch.arange(n, device=s.device).expand(c, n)
    change = s[:, 1:] != s[:, :-1]
    true = torch.ones(c, 1, dtype=torch.bool, device=s.device)
    starts = torch.cat([true, change], dim=1)
    ends = torch.cat([change, true], dim=1)
    if first:
        first = torch.cummax(torch.where(starts, positions, 0), dim=1).values
    else:
        first = None
    last_rev = torch.cummin(torch.where(ends, positions, n).flip(1), dim=1).values
    return first, last_rev.flip(1)


def ball_ranks(response, device, *, centers=None, route="auto", counts=True):
    """Orders, tie-group starts and ball-end weights for ``centers`` (default: all).

    Parameters
    ----------
    response : Response
    device : torch.device
    centers : array-like of int, optional
    route : {"auto", "sort", "interval"}
        ``"interval"`` (R2) needs a scalar Euclidean response and runs on CPU;
        ``"auto"`` uses it there, and the batched sort (R1) otherwise.
    counts : bool, default=True
        Also keep the tie-group starts needed by :func:`counts_from_ranks` (the cumsum
        evaluation does not need them).
    """
    device = torch.device(device)
    n = response.n
    centers = np.arange(n) if centers is None else np.asarray(centers, dtype=np.int64)
    if route == "auto":
        route = "interval" if response.is_scalar_euclidean and device.type == "cpu" else "sort"
    D = None if route == "interval" else response.pairwise(device)
    y = response.data[:, 0] if route == "interval" else None
    step = _chunk(n, device, width=1 if route == "sort" else 0.5)
    chunks = []
    for start in range(0, len(centers), step):
        block = centers[start:start + step]
        if route == "interval":
            s, order = _interval_sort(y, block)
            s = torch.from_numpy(np.ascontiguousarray(s)).to(device)
            order = torch.from_numpy(np.ascontiguousarray(order)).to(device)
        else:
            s, order = torch.sort(D[torch.from_numpy(block).to(device)], dim=1, stable=True)
        first, last = _tie_groups(s, first=counts)
        if counts:
            first = first.to(torch.int32)
        weight = torch.zeros(s.shape, dtype=torch.int32, device=device)
        weight.scatter_add_(1, last, torch.ones_like(weight))
        chunks.append((order, first, weight))
    return BallRanks(n, torch.from_numpy(centers).to(device), chunks)


def counts_from_ranks(ranks):
    """The (n_centers, n) int32 count matrix c[k, i] = #{l : d_lk >= d_ik}."""
    rows = []
    for order, first, _ in ranks.chunks:
        if first is None:
            raise ValueError("these ranks were built with counts=False")
        c = torch.empty(order.shape, dtype=torch.int32, device=order.device)
        c.scatter_(1, order, (ranks.n - first).to(torch.int32))
        rows.append(c)
    return torch.cat(rows, dim=0)


def kernel_from_counts(counts, n):
    """K_ij = sum_k min(c_ki, c_kj) / (m n) via min(a, b) = (a + b - |a - b|) / 2 (float64).

    For all centres (m = n) this is the V-statistic ball kernel with its 1/n^2.
    """
    m = counts.shape[0]
    C = counts.to(torch.float64).T.contiguous()  # (n, m)
    r = C.sum(1)
    K = torch.empty(n, n, dtype=torch.float64, device=C.device)
    step = _chunk(n, C.device, width=max(1, m // 64))
    for start in range(0, n, step):  # upper block-triangle only, mirrored (half the work)
        stop = min(n, start + step)
        L1 = torch.cdist(C[start:stop], C[start:], p=1)
        block = r[start:stop, None] + r[None, start:] - L1
        K[start:stop, start:] = block
        K[start:, start:stop] = block.T
    return K / (2.0 * m * n)


def u_kernel_from_counts(counts):
    """Leave-pair-out kernel K^U (zero diagonal) from the full count matrix (n >= 4)."""
    n = counts.shape[0]
    C = counts.to(torch.float64)
    S = kernel_from_counts(counts, n) * (n * n)  # sum_k min(c_ki, c_kj)
    S = torch.round(S)
    A = torch.empty(n, n, dtype=torch.float64, device=C.device)  # a_ij = #{k : c_kj >= c_ki}
    step = _chunk(n, C.device, width=n)
    for start in range(0, n, step):
        block = C[:, start:start + step]  # (n_k, b) = c_ki for i in block
        A[start:start + step] = (C[:, None, :] >= block[:, :, None]).sum(0).to(torch.float64)
    full = (C == n).to(torch.float64)
    Z = full.T @ full
    E = full  # e_ij = 1{c_ij = n}: centre i, point j
    inner = S - (C + C.T + A + A.T + Z - 4.0 * E - 2.0)
    KU = inner / ((n - 2) * (n - 3))
    KU.fill_diagonal_(0.0)
    return KU


def u_center(A):
    """Szekely-Rizzo U-centring of a zero-diagonal symmetric matrix."""
    n = A.shape[0]
    row = A.sum(1, keepdim=True) / (n - 2)
    col = A.sum(0, keepdim=True) / (n - 2)
    total = A.sum() / ((n - 1) * (n - 2))
    out = A - row - col + total
    out.fill_diagonal_(0.0)
    return out


def class_codes(response, device):
    """Integer class codes (discrete metric) and the number of classes."""
    codes = torch.tensor(np.asarray(response.data), dtype=torch.int64, device=device)
    return codes, int(codes.max()) + 1
