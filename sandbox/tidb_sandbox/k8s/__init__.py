"""A stand-in Kubernetes API: resource types, admission (pruning, defaulting, validation), tables, OpenAPI."""
