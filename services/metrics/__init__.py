"""The metrics service: fold canonical events into roadmap indicators for Prometheus.

- ``settings.py``: ``MetricsSettings`` (``METRICS_*``, ``ROADMAP_CLOCK``).
- ``entities.py``: the compact record kept per natural key (pure).
- ``plan.py``: the roadmap file compiled into slots: which entities count, how much (pure).
- ``fold.py``: ``fold(state, event)``: latest version per key wins; additive buckets (pure).
- ``readings.py``: an indicator's value, expected value and components at a time (pure).
- ``exporter.py``: the Prometheus collector that reads the state at scrape time.
- ``snapshots.py``: which KPI snapshots to publish, and when (pure).
- ``consumer.py``: replay each assigned partition from the beginning, then follow it.
- ``app.py``: ``create_app(settings)``.
"""
