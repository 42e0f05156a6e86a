"""Fast parameters and expected failures for scikit-learn's common checks (tests/test_common.py)."""

_FAST = {"device": "cpu", "tol": 1e-10}

FAST_PARAMS = {
    "NTKKernelMachine": {**_FAST},
    "NTKSVC": {**_FAST},
    "NTKSVR": {**_FAST},
    "NTKRidge": {**_FAST},
    "NTKRidgeClassifier": {**_FAST},
    # logistic Newton: residual floor ~1.5e-7 on the badly scaled check data (see tests)
    "NTKLogisticRegression": {"device": "cpu", "tol": 1e-6},
    "NTKNetwork": {"width": 32, "max_iter": 30, "dtype": "float64", "device": "cpu"},
}

EXPECTED_FAILED_CHECKS = {}
