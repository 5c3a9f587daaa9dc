"""Plumbing shared by every service: settings, Kafka clients, topics, HTTP health, logging, run loop."""
