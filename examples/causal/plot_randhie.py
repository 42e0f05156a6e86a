"""
RAND Health Insurance Experiment: a count outcome without a declared support
============================================================================

The RAND HIE extract shipped with statsmodels (20,190 person-years) has the number of outpatient
visits ``mdvis`` (a count, up to 77; 37 in the subsample used here) and an individual-deductible
indicator ``idp``. We bound the effect of ``idp`` on ``mdvis`` given the other covariates with
:class:`~fstat.causal.ConditionalDivergenceBounds`, reading ``idp`` as a possibly confounded
treatment (an illustration of the API, not a re-analysis of the experiment).

Without ``outcome_bounds`` the support is the observed range (here ``[0, 37]``) and fstat warns with
an :class:`~fstat.causal.UnboundedOutcomeWarning`: a count has no natural upper limit, so the upper
bounds are driven by the sample maximum. The plot shows the CATE band (binned medians) against the
estimated propensity next to the Manski band. In the population every f-interval contains the
Manski interval on the same support (the f-ball holds every law compatible with the data). On this
heavy-tailed count (mean about 3, a long right tail) the per-row estimates are far from that: many
intervals are inverted and few contain the Manski interval. Read that as a sign that the observed
range is a poor support and that the warning should be acted on (declare ``outcome_bounds`` from
subject knowledge). A 3000-row subsample and 400 steps keep the run short on a CPU.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from statsmodels.datasets import randhie

from fstat.causal import (
    BoundsDisplay,
    ConditionalDivergenceBounds,
    InvertedBoundsWarning,
    UnboundedOutcomeWarning,
)

data = randhie.load_pandas().data
data = data.sample(3000, random_state=0).reset_index(drop=True)
y = data["mdvis"].to_numpy(dtype=float)
a = data["idp"].to_numpy(dtype=int)
X = data.drop(columns=["mdvis", "idp"])
print(f"n = {len(y)}, treated share {a.mean():.3f}, mdvis range [{y.min():.0f}, {y.max():.0f}]")

est = ConditionalDivergenceBounds(("kl", "hellinger", "chi2"), max_iter=400,
                                  hidden_layer_sizes=(32, 32), random_state=0, device="cpu")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    est.fit(X, y, treatment=a)
    cate = est.predict(X)  # noisy rows can be inverted: the count is in the warning list
for w in caught:
    if issubclass(w.category, UnboundedOutcomeWarning):
        print("UnboundedOutcomeWarning:", w.message)
    elif issubclass(w.category, InvertedBoundsWarning):
        print("InvertedBoundsWarning:", w.message)

manski = est.predict_manski(X)
print(f"mean CATE bounds  [{cate[:, 0].mean():7.2f}, {cate[:, 1].mean():7.2f}]")
print(f"mean Manski band  [{manski[:, 0].mean():7.2f}, {manski[:, 1].mean():7.2f}]")
print(f"observed support {est.support_}")
contains = np.mean((cate[:, 0] <= manski[:, 0]) & (cate[:, 1] >= manski[:, 1]))
print(f"rows whose CATE interval contains the Manski interval: {contains:.1%} "
      f"(100% in the population); inverted: {np.mean(cate[:, 0] > cate[:, 1]):.1%}")

fig, ax = plt.subplots(figsize=(6, 4))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the same inverted-interval note as above
    BoundsDisplay.from_estimator(est, X, feature="propensity", ax=ax)
ax.set_title("RAND HIE: bounds on the effect of idp on mdvis")
ax.set_ylim(np.quantile(manski[:, 0], 0.02) - 1, np.quantile(manski[:, 1], 0.98) + 1)
fig.tight_layout()
plt.show()
