"""The ``pinrelay`` command: what an operator runs against a deployed stack (or the local one).

    pinrelay import-offline FILE.csv [--dry-run]    offline sales to POST /events
    pinrelay redrive | rejected | uncertain         the DLQ and the delivery ledger
    pinrelay new-api-key --secret-id NAME           a key for POST /events, stored as its digest

It imports the domain (``pinrelay``) and boto3, never the local stack: ``main`` registers the
commands, one module each.
"""
