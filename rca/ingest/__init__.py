"""Telemetry in: OTLP (protobuf + JSON; HTTP bodies and files) and Jaeger JSON -> columnar batches."""
