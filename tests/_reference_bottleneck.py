"""Slow, obviously-correct numpy float64 references for the CS estimators (tests only)."""

import numpy as np


def col(a):
    a = np.asarray(a, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def gram_loop(A, B, sigma):
    """Gaussian Gram by an explicit double loop."""
    A, B = col(A), col(B)
    G = np.empty((A.shape[0], B.shape[0]))
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            G[i, j] = np.exp(-np.sum((A[i] - B[j]) ** 2) / (2.0 * sigma**2))
    return G


def gram_broadcast(A, B, sigma):
    A, B = col(A), col(B)
    d2 = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2.0 * sigma**2))


def gram(A, B, sigma):
    return gram_loop(A, B, sigma) if max(len(A), len(B)) <= 30 else gram_broadcast(A, B, sigma)


def cs_divergence_ref(A, B, sigma):
    return (np.log(gram(A, A, sigma).mean()) + np.log(gram(B, B, sigma).mean())
            - 2.0 * np.log(gram(A, B, sigma).mean()))


def conditional_cs_ref(X, y, y_pred, sx, sy):
    K = gram(X, X, sx)
    L1, L2, L21 = gram(y, y, sy), gram(y_pred, y_pred, sy), gram(y_pred, y, sy)
    w = 1.0 / K.sum(axis=1) ** 2

    def S(L):
        return np.sum(w * (K * L).sum(axis=1))

    return np.log(S(L1)) + np.log(S(L2)) - 2.0 * np.log(S(L21))


def cs_qmi_abc_ref(X, T, sx, st):
    K, Q = gram(X, X, sx), gram(T, T, st)
    n = K.shape[0]
    ones = np.ones(n)
    A = np.trace(K @ Q) / n**2
    B = K.sum() * Q.sum() / n**4
    C = ones @ K @ Q @ ones / n**3
    return A, B, C


def cs_qmi_ref(X, T, sx, st):
    A, B, C = cs_qmi_abc_ref(X, T, sx, st)
    return np.log(A) + np.log(B) - 2.0 * np.log(C)


def hsic_ref(X, T, sx, st):
    K, Q = gram(X, X, sx), gram(T, T, st)
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ Q @ H) / n**2
