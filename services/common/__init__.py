"""Plumbing shared by every service: settings, Kafka, topics, HTTP health, logging, run loop."""
