"""The ingest service: validate upstream events, publish canonical ones, dead-letter the rest.

- ``settings.py``: ``IngestSettings`` (``INGEST_*``).
- ``dedup.py``: the bounded window of accepted event ids (pure).
- ``triage.py``: one upstream message in, exactly one outcome out (pure).
- ``outcomes.py``: outcomes turned into outbound Kafka records (pure).
- ``metrics.py``: the service's metrics, declared once.
- ``pipeline.py``: triage a batch, publish it, count it; shared by Kafka and HTTP.
- ``consumer.py``: the FastStream batch handler (commit only after publish is acknowledged).
- ``http_api.py``: ``POST /v1/events``.
- ``app.py``: ``create_app(settings)`` wires it all together.
"""
