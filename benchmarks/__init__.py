"""Speed benchmarks of neuralglm against statsmodels, scikit-learn and glum (``python -m benchmarks.run``)."""
