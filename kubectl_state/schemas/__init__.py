"""JSON Schemas shipped as data files (archive manifest, report, topology)."""
