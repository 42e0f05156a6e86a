"""Loss registry of the NTK kernel machines (spec §2.4).

Each loss ``l(z, y)`` of a decision value ``z`` and a target ``y`` comes with the
derivative used by the subgradient dynamics (the value at kinks is fixed: the hinge
derivative is 0 at ``yz = 1``), a curvature bound ``c`` (for the default step size) and
whether it is a classification loss (targets +-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "Loss"]


@dataclass(frozen=True)
class Loss:
    name: str
    value: callable
    deriv: callable
    curvature: float
    classification: bool


def _hinge(z, y, eps):
    return torch.clamp(1.0 - y * z, min=0.0)


def _hinge_d(z, y, eps):
    return -y * (y * z < 1.0).to(z.dtype)


def _sq_hinge(z, y, eps):
    return torch.clamp(1.0 - y * z, min=0.0).square()


def _sq_hinge_d(z, y, eps):
    return -2.0 * y * torch.clamp(1.0 - y * z, min=0.0)


def _eps_ins(z, y, eps):
    return torch.clamp((z - y).abs() - eps, min=0.0)


def _eps_ins_d(z, y, eps):
    r = z - y
    return torch.sign(r) * (r.abs() > eps).to(z.dtype)


def _squared(z, y, eps):
    return (z - y).square()


def _squared_d(z, y, eps):
    return 2.0 * (z - y)


def _logistic(z, y, eps):
    return F.softplus(-y * z)


def _logistic_d(z, y, eps):
    return -y * torch.sigmoid(-y * z)


LOSSES = {
    "hinge": Loss("hinge", _hinge, _hinge_d, 1.0, True),
    "squared_hinge": Loss("squared_hinge", _sq_hinge, _sq_hinge_d, 2.0, True),
    "epsilon_insensitive": Loss("epsilon_insensitive", _eps_ins, _eps_ins_d, 1.0, False),
    "squared": Loss("squared", _squared, _squared_d, 2.0, False),
    "logistic": Loss("logistic", _logistic, _logistic_d, 0.25, True),
}
