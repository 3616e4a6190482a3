"""Developer tools over the repository's own files: template.yaml and the ingest API's OpenAPI
document. Not shipped; neither emulation (``pinrelay_local``) nor measurement (``pinrelay_bench``).

template     template.yaml loaded (short-form tags), translated offline by SAM, linted by
             cfn-lint (``python -m pinrelay_tools.template``: ``make lint``, ``make security``);
             the local stack and the bench read the template with its ``load_template``.
openapi      the generator of functions/ingest/openapi.json from the pydantic models
             (``python -m pinrelay_tools.openapi``; ``--check`` exits 1 when the file is stale).
"""
