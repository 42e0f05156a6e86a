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
        the tie group at each sorted position (None if built with ``counts=False``),
        ``weight`` (c, n) int32 ball-end weights (None when the chunk has no ties: all 1).
    """

    n: int
    centers: torch.Tensor
    chunks: list

    @property
    def n_centers(self):
        return len(self.centers)

    def to(self, device):
        chunks = [tuple(None if t is None else t.to(device) for t in chunk)
                  for chunk in self.chunks]
        return BallRanks(self.n, self.centers.to(device), chunks)


@np.errstate(over="ignore")  # distances beyond the float64 range are inf, as in R1
def _interval_sort(y, centers):
    """R2: per-centre distance orders of scalar data by two pointers (numpy, CPU).

    All centres advance in lock-step through the globally sorted data, taking the nearer
    neighbour (the left one on equal distance); distances are ``y_k - y_left`` and
    ``y_right - y_k``, the same floating-point values as ``|y_i - y_k|``.

    Returns
    -------
    order : ndarray of shape (c, n), int64
        Point indices by non-decreasing distance from each centre (centre-major).
    tied : ndarray of shape (c, n), bool, or None
        ``tied[k, t]`` is True when the t-th distance equals the (t-1)-th one; None when
        no centre has a tie (the common case for continuous data).
    """
    n, c = len(y), len(centers)
    g = np.argsort(y, kind="stable")
    # sentinels (index shift of one): NaN on the left is never taken (NaN <= x is False),
    # +inf on the right loses ties to the left, so even a real distance that overflows to
    # inf is taken before a sentinel
    padded = np.concatenate([[np.nan], y[g], [np.inf]])
    pos = np.empty(n, dtype=np.int64)
    pos[g] = np.arange(n)
    g_padded = np.concatenate([[0], g, [0]])
    yk = y[centers]
    # padded index of the next left candidate; the next right one is always left + t + 1
    # at step t (each step moves exactly one of the two pointers outwards by one)
    left = pos[centers].copy()
    order = np.empty((c, n), dtype=np.int64)
    tied = np.empty((n, c), dtype=bool)  # step-major: contiguous writes
    tied[0] = False
    # Steps are written to a small step-major buffer and transposed into ``order`` block by
    # block (a whole-array transpose afterwards costs about as much as the loop itself).
    width = 64
    buffer = np.empty((width, c), dtype=np.int64)
    buffer[0] = centers
    dl, dr, idx = np.empty(c), np.empty(c), np.empty(c, dtype=np.int64)
    previous, current = np.zeros(c), np.empty(c)
    take_left = np.empty(c, dtype=bool)
    for t in range(1, n):
        np.subtract(yk, padded[left], out=dl)
        np.subtract(padded[t + 1:][left], yk, out=dr)
        np.less_equal(dl, dr, out=take_left)
        np.fmin(dl, dr, out=current)  # the taken distance (a NaN sentinel is ignored)
        np.equal(current, previous, out=tied[t])
        previous, current = current, previous
        np.add(left, t + 1, out=idx)
        np.copyto(idx, left, where=take_left)
        j = t % width
        np.take(g_padded, idx, out=buffer[j])
        if j == width - 1:
            order[:, t - j:t + 1] = buffer.T
        left -= take_left
    rest = n % width
    if rest:
        order[:, n - rest:] = buffer[:rest].T
    return order, (np.ascontiguousarray(tied.T) if tied.any() else None)


def _tie_groups(starts):
    """First sorted index of each position's tie group and the ball-end weights.

    ``starts[k, r]`` marks the first position of a tie group (rows sorted ascending). The
    first index is the running maximum of the group starts (``searchsorted(s, s, "left")``
    in linear time); the ball through any member of a group ends at the group's last
    position, so the weight there is the group size and 0 elsewhere in the group.
    """
    c, n = starts.shape
    positions = torch.arange(n, device=starts.device, dtype=torch.int32).expand(c, n)
    first = torch.cummax(torch.where(starts, positions, 0), dim=1).values
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    weight = torch.where(ends, positions - first + 1, 0)
    return first, weight


def _untied(c, n, device):
    """Tie-group starts of rows without ties (the weights are then all ones: None)."""
    return torch.arange(n, device=device, dtype=torch.int32).expand(c, n).contiguous()


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

    Notes
    -----
    A chunk's ``weight`` is None when none of its rows has a tie: every ball-end weight is
    then 1 and the evaluators skip the multiplication.
    """
    device = torch.device(device)
    n = response.n
    centers = np.arange(n) if centers is None else np.asarray(centers, dtype=np.int64)
    if route == "auto":
        route = "interval" if response.is_scalar_euclidean and device.type == "cpu" else "sort"
    D = None if route == "interval" else response.pairwise(device)
    y = response.data[:, 0] if route == "interval" else None
    # R1 sorts a float64 block of D (chunked); R2's per-step cost is numpy call overhead,
    # so it takes centres in wider blocks (every block's order is kept either way)
    step = _chunk(n, device, width=1 if route == "sort" else 0.25)
    chunks = []
    for start in range(0, len(centers), step):
        block = centers[start:start + step]
        if route == "interval":
            order, tied = _interval_sort(y, block)
            order = torch.from_numpy(order).to(device)
            starts = None if tied is None else ~torch.from_numpy(tied).to(device)
        else:
            s, order = torch.sort(D[torch.from_numpy(block).to(device)], dim=1, stable=True)
            starts = torch.ones(s.shape, dtype=torch.bool, device=device)
            torch.ne(s[:, 1:], s[:, :-1], out=starts[:, 1:])
            del s
            if bool(starts.all()):
                starts = None
        if starts is None:
            first, weight = _untied(len(block), n, device) if counts else None, None
        else:
            first, weight = _tie_groups(starts)
            first = first if counts else None
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
