"""Fast parameters and expected failures for the common scikit-learn checks (ebm family)."""

_FAST = {"max_iter": 20, "hidden_layer_sizes": (8,), "n_noise": 32, "n_logz_samples": 2000,
         "device": "cpu"}
_REASON = ("stochastic minibatches: integer weights change the sampling stream, so a weighted "
           "fit equals a fit on repeated rows only in distribution, not bit for bit")

FAST_PARAMS = {
    "CompositionalEBM": dict(_FAST),
    "NCEDensity": dict(_FAST),
    "SNLDensity": dict(_FAST),
}

EXPECTED_FAILED_CHECKS = {
    name: {"check_sample_weight_equivalence_on_dense_data": _REASON} for name in FAST_PARAMS
}
