"""A lean driver of torch's fused Adam kernel for the training loops.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo`` on its first call in a process
(about 2.5 s on the 2-core CPU, paid by the first fit), and ``Optimizer.step`` adds hooks,
profiler records, per-call grouping and state look-ups that dominate a step of a model with a
handful of parameters (the quadratic energy). :class:`FusedAdam` keeps the same state
(``exp_avg``, ``exp_avg_sq``, a float32 ``step`` per tensor) and calls the same
``torch._fused_adam_`` kernel with the same arguments as ``torch.optim.Adam(fused=True)``, so
the parameter trajectory is bit-identical (tested); it does nothing else.
"""

from __future__ import annotations

import torch


class FusedAdam:
    """Adam (L2 weight decay, no amsgrad) through ``torch._fused_adam_``.

    Parameters
    ----------
    param_groups : list of dict
        Each with ``"params"`` and optionally ``"lr"`` (default ``learning_rate``).
    learning_rate : float
    betas : tuple of float, default=(0.9, 0.999)
    eps : float, default=1e-8
    weight_decay : float, default=0.0

    Attributes
    ----------
    param_groups : list of dict
        ``params``, ``lr``, ``betas``, ``eps``, ``weight_decay`` (as in ``torch.optim``;
        edit ``betas`` or ``lr`` there between steps).
    """

    def __init__(self, param_groups, learning_rate, *, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0):
        self.param_groups = []
        seen = set()
        for group in param_groups:
            params = list(group["params"])
            if any(id(p) in seen for p in params) or len({id(p) for p in params}) < len(params):
                raise ValueError("some parameters appear in more than one parameter group "
                                 "(or twice in one); each would be stepped twice.")
            seen.update(id(p) for p in params)
            for p in params:
                if p.device.type not in ("cpu", "cuda") or not p.is_floating_point():
                    raise ValueError(f"FusedAdam needs floating CPU/CUDA tensors; got {p.dtype} "
                                     f"on {p.device}.")
            self.param_groups.append({
                "params": params, "lr": float(group.get("lr", learning_rate)),
                "betas": tuple(betas), "eps": float(eps), "weight_decay": float(weight_decay),
                # state as torch.optim.Adam(fused=True) creates it on the first step
                "exp_avg": [torch.zeros_like(p, memory_format=torch.preserve_format)
                            for p in params],
                "exp_avg_sq": [torch.zeros_like(p, memory_format=torch.preserve_format)
                               for p in params],
                "step": [torch.zeros((), dtype=torch.float32, device=p.device) for p in params],
            })

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (``None``, or zeros with ``set_to_none=False``)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def step(self):
        """One Adam update of every parameter that has a gradient (others keep their state)."""
        with torch.no_grad():
            for g in self.param_groups:
                grads = [p.grad for p in g["params"]]
                if not grads:  # an empty group (kept, as torch.optim keeps it)
                    continue
                if all(x is not None for x in grads):  # the usual case: no filtering
                    params, avg, avg_sq, steps = (g["params"], g["exp_avg"], g["exp_avg_sq"],
                                                  g["step"])
                else:
                    keep = [k for k, x in enumerate(grads) if x is not None]
                    if not keep:
                        continue
                    params, grads, avg, avg_sq, steps = (
                        [lst[k] for k in keep] for lst in
                        (g["params"], grads, g["exp_avg"], g["exp_avg_sq"], g["step"]))
                beta1, beta2 = g["betas"]
                for group in _by_device_dtype(params, grads, avg, avg_sq, steps):
                    torch._foreach_add_(group[4], 1)
                    torch._fused_adam_(*group[:4], [], group[4], amsgrad=False, lr=g["lr"],
                                       beta1=beta1, beta2=beta2, weight_decay=g["weight_decay"],
                                       eps=g["eps"], maximize=False, grad_scale=None,
                                       found_inf=None)


def _by_device_dtype(*lists):
    """Split parallel lists by the (device, dtype) of the first list's tensors, in order."""
    keys = [(p.device, p.dtype) for p in lists[0]]
    if len(set(keys)) <= 1:
        return [lists]
    out = {}
    for k, key in enumerate(keys):
        bucket = out.setdefault(key, [[] for _ in lists])
        for j, lst in enumerate(lists):
            bucket[j].append(lst[k])
    return list(out.values())
