"""The roadmap monitor's services (ingest, metrics, alerts) and their shared plumbing."""
