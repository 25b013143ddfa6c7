"""Restoring an archive into a cluster: `import` and `diff`.

  source    reading and verifying an archive (or a YAML stream) into plan inputs
  target    the target cluster: writes with retries, owner lookups, CRD waits
  journal   what an import has done, for --resume
  importer  plan_import, import_plan
  diff      what an import would change, object by object
"""
