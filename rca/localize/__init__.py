"""Localization: from anomalies to ranked root-cause Hypotheses with Evidence."""
