"""The ``roadmap-monitor`` sub-commands, one module each."""
