"""
The shared training loop
========================

Every neural estimator in fstat trains through one loop (``fstat._training``): full
batch or generator-shuffled minibatches, early stopping on a validation score and
restoration of the best weights. Here it fits a small network to a noisy sine and we
plot the training loss next to the validation score.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from fstat._nn import make_mlp
from fstat._torch import make_generator
from fstat._training import make_optimizer, train_minibatches

rng = np.random.RandomState(0)
X = torch.tensor(rng.uniform(-3, 3, size=(400, 1)))
y = torch.sin(X) + 0.2 * torch.tensor(rng.normal(size=(400, 1)))
train, val = torch.arange(300), torch.arange(300, 400)

net = make_mlp(1, (32, 32), 1, activation="tanh", generator=make_generator(0))
optimizer = make_optimizer(net.parameters(), "adam", learning_rate=0.01)


def loss(index):
    rows = train[index]
    return ((net(X[rows]) - y[rows]) ** 2).mean()


def validate():
    with torch.no_grad():
        return -float(((net(X[val]) - y[val]) ** 2).mean())


result = train_minibatches(
    net, loss, len(train), optimizer=optimizer, generator=make_generator(1),
    max_epochs=300, batch_size=32, validate=validate, early_stopping=True,
    n_iter_no_change=15,
)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, len(result.loss_curve) + 1), result.loss_curve, label="training loss")
ax.plot(result.validation_iterations, [-s for s in result.validation_scores],
        label="validation loss")
ax.axvline(result.best_iteration, color="k", ls=":", label="restored weights")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.legend()
plt.show()
