"""Export options are checked once, in core, for the CLI and the Ansible module alike."""

from __future__ import annotations

import pytest

from kubectl_state.core.errors import UsageError
from kubectl_state.core.workflows.export import ExportOptions, check_options, secrets_encrypter


def test_secrets_mode_and_recipients_must_agree() -> None:
    assert secrets_encrypter("include", []) is None
    assert secrets_encrypter("skip", []) is None
    with pytest.raises(UsageError, match="only used with secrets=encrypt"):
        secrets_encrypter("include", ["age1xyz"])
    with pytest.raises(UsageError, match="needs at least one recipient"):
        secrets_encrypter("encrypt", [])


def test_bad_sizes_and_selectors_are_refused_before_any_request() -> None:
    check_options(ExportOptions(label_selector="app in (web,api)"))
    for bad in (ExportOptions(concurrency=0), ExportOptions(page_size=0), ExportOptions(label_selector="a in (b")):
        with pytest.raises(UsageError):
            check_options(bad)
