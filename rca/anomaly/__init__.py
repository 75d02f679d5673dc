"""Anomaly scoring: span features + per-operation IsolationForest, log-template and metric shifts."""
