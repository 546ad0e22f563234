"""Inference on fitted GLMs: covariances, Wald tests, intervals, analysis of deviance."""
