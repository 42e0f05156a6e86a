"""Fast parameters and expected failures for the common scikit-learn checks."""

FAST_PARAMS = {
    "FCCovNet": dict(max_epochs=30, min_epochs=0, early_stopping=False, hidden_layer_sizes=(8,),
                     device="cpu"),
    "LinearFCCov": dict(device="cpu"),
}

EXPECTED_FAILED_CHECKS = {}
