"""``roadmap-monitor report``: the progress report for the roadmap's joint commission.

``combine`` puts metrics replicas' histories together, ``charts`` draws an indicator as inline
SVG and ``page`` lays out the HTML; all three are pure. The command (``services/commands/
report.py``) fetches and writes.
"""
