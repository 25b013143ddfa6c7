"""How much a reader is willing to trust an archive before it refuses it.

Each bound stops one way a hostile archive could exhaust memory or time; all of them can be
raised by a caller that knows its archives are unusually large.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReadLimits:
    #: One object file. etcd refuses requests over 1.5 MiB by default, and YAML with
    #: indentation is rarely more than twice its JSON, so 16 MiB leaves ample room.
    max_object_bytes: int = 16 * MiB
    #: manifest.json. About 250 bytes per object: 256 MiB covers a million objects.
    max_manifest_bytes: int = 256 * MiB
    #: Nesting depth of one YAML document. Deep CRD schemas reach ~40; libyaml's own
    #: recursion crashes the process somewhere past 10,000 and slows quadratically before.
    max_yaml_depth: int = 256
    #: Total bytes a .tar.gz may decompress to, in one pass. None: the larger of
    #: `min_decompressed_bytes` and `max_compression_ratio` times the file's size, which
    #: real archives of YAML (5-30x) never reach and gzip bombs (~1000x) always do.
    max_decompressed_bytes: int | None = None
    min_decompressed_bytes: int = 256 * MiB
    max_compression_ratio: int = 200
    #: Bytes of tar headers (pax extended headers, GNU long names) before one member.
    #: tarfile reads these into memory whole, so their size must be capped.
    max_tar_header_bytes: int = 64 * 1024

    def decompressed_limit(self, compressed_size: int) -> int:
        if self.max_decompressed_bytes is not None:
            return self.max_decompressed_bytes
        return max(self.min_decompressed_bytes, self.max_compression_ratio * compressed_size)


DEFAULT_LIMITS = ReadLimits()
