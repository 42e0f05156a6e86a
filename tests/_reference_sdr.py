"""Slow, obviously-correct references for fstat.sdr (plain numpy loops)."""

import numpy as np


def naive_fccov(U, D, matrix=False):
    """The delta_ikl triple loop: (1/n^2) sum_{k,l} |m_kl|^2 (or the matrix)."""
    U = np.asarray(U, dtype=float).reshape(len(D), -1)
    n, d = U.shape
    Uc = U - U.mean(0)
    M = np.zeros((d, d))
    for k in range(n):
        for l in range(n):
            inside = D[:, k] <= D[l, k]  # delta_ikl for every i
            m = Uc[inside].sum(0) / n
            M += np.outer(m, m)
    M /= n * n
    return M if matrix else np.trace(M)


def naive_ball_kernel(D):
    """K_ij = (1/n^2) sum_{k,l} delta_ikl delta_jkl / n^2 (the 1/n^2 of K times counts)."""
    n = len(D)
    K = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            s = 0
            for k in range(n):
                for l in range(n):
                    s += (D[i, k] <= D[l, k]) and (D[j, k] <= D[l, k])
            K[i, j] = s / n**2
    return K


def naive_ball_kernel_u(D):
    """Leave-pair-out kernel: sum over k != l, k, l not in {i, j}."""
    n = len(D)
    K = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            s = 0
            for k in range(n):
                for l in range(n):
                    if k == l or k in (i, j) or l in (i, j):
                        continue
                    s += (D[i, k] <= D[l, k]) and (D[j, k] <= D[l, k])
            K[i, j] = s / ((n - 2) * (n - 3))
    return K


def naive_u_center(A):
    n = len(A)
    out = np.zeros_like(A)
    total = A.sum() / ((n - 1) * (n - 2))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = A[i, j] - A[i].sum() / (n - 2) - A[:, j].sum() / (n - 2) + total
    return out


def naive_fccov_u(U, D, matrix=False):
    U = np.asarray(U, dtype=float).reshape(len(D), -1)
    n = len(D)
    Kh = naive_u_center(naive_ball_kernel_u(D))
    M = np.zeros((U.shape[1], U.shape[1]))
    for i in range(n):
        for j in range(n):
            if i != j:
                M += Kh[i, j] * np.outer(U[i], U[j])
    M /= n * (n - 3)
    M = 0.5 * (M + M.T)
    return M if matrix else np.trace(M)


def naive_fccor(U, D):
    U = np.asarray(U, dtype=float).reshape(len(D), -1)
    n = len(D)
    v = 0.0
    for k in range(n):
        for l in range(n):
            p = np.mean([D[i, k] <= D[l, k] for i in range(n)])
            v += p * (1 - p)
    v /= n * n
    Uc = U - U.mean(0)
    lam = np.linalg.eigvalsh(Uc.T @ Uc / n)[-1]
    return naive_fccov(U, D) / (lam * v), v


def naive_distance_stat(U, D):
    U = np.asarray(U, dtype=float).reshape(len(D), -1)
    Uc = U - U.mean(0)
    n = len(D)
    dbar = D.sum() / (n * (n - 1))
    return -np.sum((Uc @ Uc.T) * D) / (n * n * dbar)


def dcor(A, B):
    """Biased V-statistic distance correlation (not squared)."""
    A = np.asarray(A, float).reshape(len(A), -1)
    B = np.asarray(B, float).reshape(len(B), -1)

    def centred(Z):
        d = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))
        return d - d.mean(0) - d.mean(1)[:, None] + d.mean()

    a, b = centred(A), centred(B)
    v = (a * b).mean(), (a * a).mean(), (b * b).mean()
    return float(np.sqrt(max(v[0], 0) / np.sqrt(v[1] * v[2])))
