"""The roadmap monitor's contracts: event shapes, topics, keys and the roadmap file.

Every service imports its shapes from here and never redefines a field.
"""
