"""Ways in: CLI, REST API (+ OTLP/HTTP receiver), web UI, chat and issue-tracker hooks."""
