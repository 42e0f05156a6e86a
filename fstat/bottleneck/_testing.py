"""Fast parameters and expected failures for the common scikit-learn checks."""

FAST_PARAMS = {
    "CSIBRegressor": dict(
        hidden_layer_sizes=(16,), bottleneck_dim=4, decoder_hidden_sizes=(16,), batch_size=64,
        max_iter=40, learning_rate=2e-2, early_stopping=False, sigma_x=1.0,
        sigma_t=1.0, dtype="float64", device="cpu",
    ),
}

EXPECTED_FAILED_CHECKS = {"CSIBRegressor": {}}
