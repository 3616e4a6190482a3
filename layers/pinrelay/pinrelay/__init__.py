"""pinrelay: forward conversion events to Pinterest's API for Conversions.

The package is the shared Lambda layer. Domain modules (models, normalise, hashing,
sources, ingest, sender) import nothing from AWS; AWS and HTTP live in ``adapters``.
"""

__version__ = "0.1.0"
