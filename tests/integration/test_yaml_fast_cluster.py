"""The archive's YAML writer against a real export: every object file of an export of the API
test server (or $KUBECTL_STATE_TEST_KUBECONFIG's cluster) is the byte-for-byte CSafeDumper
dump of its content, and so is every object the server lists, uncleaned (managedFields,
timestamps, status and all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubectl_state.core.archive.yaml_fast import dump_text
from kubectl_state.core.archive.yamlcodec import dump_object, load_object
from kubectl_state.core.kube.client import KubeClient
from kubectl_state.core.kube.discovery import discover
from kubectl_state.core.kube.lists import iter_pages
from tests.apiserver.testing import unique
from tests.helpers import create
from tests.helpers import run_cli as run
from tests.unit.test_yaml_fast import reference

#: Values that take every branch of the text writer: folded plain text, single quotes with
#: line breaks and blank lines, quotes inside, strings that read as other types, indicators.
WRITTEN_AS_TEXT = {
    "script.sh": "#!/bin/sh\nset -eu\n\necho 'hello world'\n" + "echo " + " ".join(["word"] * 30) + "\n",
    "long-line": "a sentence with spaces " * 12,
    "quoted": "it's 'quoted'",
    "number": "1e3",
    "flag": "yes",
    "date": "2024-01-01",
    "indicator": "- not a list",
    "comment": "value # not a comment",
    "json": json.dumps({"k": [1, 2, {"nested": "x y"}]}),
}
#: Values the text writer leaves to libyaml (double quotes, non-ASCII).
WRITTEN_BY_LIBYAML = {"tabbed": "a\tb", "spaced-break": "line \nnext", "unicode": "grüße, 日本"}


def test_every_exported_object_file_is_the_csafedumper_dump(kube_cluster: str, tmp_path: Path) -> None:
    ns = unique("yamlfast")
    create(kube_cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for name, data in (("as-text", WRITTEN_AS_TEXT), ("by-libyaml", WRITTEN_BY_LIBYAML)):
        create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": name, "namespace": ns,
                                           "annotations": {"note": "first line\nsecond line"}},
                              "data": data})
    path = tmp_path / "backup"
    code, _, err = run("export", str(path), "-A", "--kubeconfig", kube_cluster, "--quiet")
    assert code == 0, err
    manifest = json.loads((path / "manifest.json").read_text())
    paths = {entry["path"] for entry in manifest["objects"]}
    assert {f"resources/configmaps/namespaces/{ns}/{name}.yaml" for name in ("as-text", "by-libyaml")} <= paths
    text = load_object((path / f"resources/configmaps/namespaces/{ns}/as-text.yaml").read_bytes())
    assert dump_text(text).encode() == reference(text)  # no fallback for these
    for entry in manifest["objects"]:
        data = (path / entry["path"]).read_bytes()
        assert data == reference(load_object(data)), entry["path"]


def test_every_listed_object_dumps_as_csafedumper_does(kube_cluster: str) -> None:
    with KubeClient.from_kubeconfig(kube_cluster) as kube:
        seen = 0
        for resource in discover(kube).resources:
            if not resource.listable:
                continue
            for page in iter_pages(kube, resource):
                for obj in page:
                    check: dict[str, Any] = obj
                    assert dump_object(check) == reference(check), (resource.qualified_name, obj["metadata"])
                    seen += 1
        assert seen > 0
