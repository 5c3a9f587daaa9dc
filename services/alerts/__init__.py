"""The alerts service: tell on-call staff when the roadmap falls behind.

Pure domain:
- ``board.py``: indicators' values put together from KPI snapshots of every metrics replica.
- ``pipeline_window.py``: the DLQ share of ingest's output over a sliding window.
- ``conditions.py``: which alerts hold at a moment, with figures and text.
- ``wording.py``: numbers and sentences for people.
- ``lifecycle.py``: ``evaluate(book, conditions, now)``: pending, firing, repeats, resolved.
- ``routing.py``: which receivers get a record.
- ``retry.py``: backoff, ``Retry-After``, the retry budget.
- ``payloads.py``: Alertmanager, webhook (HMAC-signed) and chat bodies.
I/O:
- ``evaluator.py``: reads the alerts, KPI, canonical and DLQ topics; evaluates; publishes records.
- ``receivers.py``: one attempt to notify a console, Alertmanager, webhook or chat.
- ``delivery.py``: the alerts topic consumed in a group; commit after every receiver is done.
- ``metrics.py``, ``settings.py``, ``app.py`` (``create_app(settings)``).
"""
