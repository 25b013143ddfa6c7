"""The backup format: writer, reader, manifest and checksums."""
