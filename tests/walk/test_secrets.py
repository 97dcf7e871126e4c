"""Secrets (private keys, tokens, credential files) are skipped and reported (issue 14, #5).

Key-shaped strings are assembled at run time, so this file is not itself a secret to scanners.
"""
from __future__ import annotations

import base64
import random

import pytest

from codesift.walk import ReadRefused, read_source, walk
from codesift.walk.secrets import secret_by_name, secret_in

from tests.walk.helpers import listed, reasons, write

DASHES = "-" * 5


def pem(kind: str, escaped_newlines: bool = False) -> str:
    """A PEM block of the given kind ("RSA PRIVATE KEY", "CERTIFICATE") with random contents."""
    body = base64.b64encode(random.Random(kind).randbytes(300)).decode()
    lines = [f"{DASHES}BEGIN {kind}{DASHES}"] + [body[i:i + 64] for i in range(0, len(body), 64)]
    lines.append(f"{DASHES}END {kind}{DASHES}")
    return ("\\n" if escaped_newlines else "\n").join(lines) + "\n"


AWS_KEY_ID = "AKIA" + "Q4ZJ2VWXR7TLMN3B"
AWS_DOCS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp" + "_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5"
SLACK_TOKEN = "xox" + "b-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"


@pytest.fixture
def tree(tmp_path):
    write(tmp_path, ".env", "DATABASE_URL=postgres://app:hunter2@db/app\n")
    write(tmp_path, ".env.local", "TOKEN=abc\n")
    write(tmp_path, ".env.example", "DATABASE_URL=\n")
    write(tmp_path, "config/.envrc", "export TOKEN=abc\n")
    write(tmp_path, "id_rsa", "an ssh key in a format we do not recognise\n")
    write(tmp_path, "id_rsa.pub", "ssh-ed25519 AAAAC3Nza me@host\n")
    write(tmp_path, "tests/certs/server.key", pem("RSA PRIVATE KEY"))
    write(tmp_path, "tests/certs/server.crt", pem("CERTIFICATE"))
    write(tmp_path, "tests/certs/client.pem", pem("CERTIFICATE") + pem("ENCRYPTED PRIVATE KEY"))
    write(tmp_path, "deploy/service-account.json",
          '{"type": "service_account", "private_key": "' + pem("PRIVATE KEY", escaped_newlines=True) + '"}\n')
    write(tmp_path, ".aws/credentials", "[default]\naws_secret_access_key = x\n")
    write(tmp_path, ".aws/config", "[default]\nregion = eu-west-1\n")
    write(tmp_path, "settings.py", f"AWS_ACCESS_KEY_ID = '{AWS_KEY_ID}'\n")
    write(tmp_path, "docs/aws.md", f"Set the key id (for example {AWS_DOCS_KEY_ID}).\n")
    write(tmp_path, "deploy.sh", f"curl -H 'Authorization: token {GITHUB_TOKEN}' https://api.github.com\n")
    write(tmp_path, "notify.py", f"SLACK = '{SLACK_TOKEN}'\n")
    write(tmp_path, ".npmrc", "//registry.npmjs.org/:_authToken=npm_abcdef123456\n")
    write(tmp_path, "web/.npmrc", "save-exact=true\n//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n")
    write(tmp_path, ".pypirc", "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n")
    write(tmp_path, ".netrc", "machine example.com login me password secret\n")
    write(tmp_path, "signing.p12", b"\x30\x82\x01\x00")
    write(tmp_path, ".ssh/config", "Host *\n")
    write(tmp_path, "pem_parser.py", f'MARKER = "{DASHES}BEGIN RSA PRIVATE KEY{DASHES}"\n\ndef parse(text):\n    return text\n')
    return tmp_path


def test_secrets_are_skipped_by_name_and_by_content(tree):
    result = walk(tree)
    assert reasons(result) == {
        ".env": "secret (environment file)",
        ".env.local": "secret (environment file)",
        "config/.envrc": "secret (environment file)",
        "id_rsa": "secret (private key)",
        "tests/certs/server.key": "secret (private key)",
        "tests/certs/client.pem": "secret (private key)",
        "deploy/service-account.json": "secret (private key)",
        ".aws/credentials": "secret (credentials file)",
        ".netrc": "secret (credentials file)",
        "settings.py": "secret (AWS access key)",
        "deploy.sh": "secret (GitHub token)",
        "notify.py": "secret (Slack token)",
        ".npmrc": "secret (registry token)",
        ".pypirc": "secret (registry token)",
        "signing.p12": "secret (key store)",
        ".ssh": "secret (key folder)",
    }
    assert listed(result) == [
        ".aws/config", ".env.example", "docs/aws.md", "id_rsa.pub", "pem_parser.py", "tests/certs/server.crt",
        "web/.npmrc",
    ]


def test_include_secrets_keeps_them(tree):
    result = walk(tree, include_secrets=True)
    assert reasons(result) == {"signing.p12": "binary"}
    assert {".env", "id_rsa", "tests/certs/server.key", ".ssh/config", "settings.py"} <= set(listed(result))


def test_a_link_to_a_secret_is_not_a_way_in(tmp_path):
    write(tmp_path, "real/.env", "TOKEN=abc\n")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "real" / ".env")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k").write_text(pem("OPENSSH PRIVATE KEY"))
    (tmp_path / "ssh_dir").symlink_to(tmp_path / "keys", target_is_directory=True)
    write(tmp_path, ".gitignore", "/real/\n/keys/\n")  # the targets are not listed on their own
    result = walk(tmp_path)
    assert listed(result) == [".gitignore"]
    assert reasons(result) == {"notes.txt": "secret (environment file)", "ssh_dir/k": "secret (private key)"}


def test_a_key_past_the_first_8_kib_is_refused_when_read(tmp_path):
    code = "x = 1\n" * 2000 + "KEY = '''" + pem("EC PRIVATE KEY") + "'''\n"
    write(tmp_path, "big.py", code)
    (source,) = walk(tmp_path).files  # the walk judges the first 8 KiB only
    with pytest.raises(ReadRefused) as refused:
        read_source(source)
    assert refused.value.reason == "secret (private key)"
    assert isinstance(refused.value, OSError)  # reported like an unreadable file by older callers
    assert read_source(source, include_secrets=True) == code.encode()


@pytest.mark.parametrize(("name", "expected"), [
    (".env.production", "secret (environment file)"),
    (".env.sample", None),
    ("env.py", None),
    ("credentials.py", None),
    ("id_ed25519", "secret (private key)"),
    ("a/b/master.key", "secret (private key)"),
    ("release.KEYSTORE", "secret (key store)"),
    ("p12", None),
])
def test_secret_names(name, expected):
    assert secret_by_name(name) == expected


def test_secret_contents():
    assert secret_in(pem("PGP PRIVATE KEY BLOCK").encode()) == "secret (private key)"
    encrypted = pem("RSA PRIVATE KEY").replace("KEY-----\n", "KEY-----\nProc-Type: 4,ENCRYPTED\n"
                                               "DEK-Info: AES-128-CBC,0A1B2C3D4E5F60718293A4B5C6D7E8F9\n\n", 1)
    assert "Proc-Type" in encrypted and secret_in(encrypted.encode()) == "secret (private key)"
    assert secret_in(pem("CERTIFICATE").encode()) is None
    assert secret_in(f"{DASHES}BEGIN PRIVATE KEY{DASHES}\n...\n".encode()) is None  # no key material
    assert secret_in(f"key = '{AWS_KEY_ID}'".encode()) == "secret (AWS access key)"
    assert secret_in(f"key = 'X{AWS_KEY_ID}'".encode()) is None  # inside a longer word
    assert secret_in(f"key = '{AWS_DOCS_KEY_ID}'".encode()) is None
    assert secret_in(b"password = hunter2\n", ".pypirc") == "secret (registry token)"
    assert secret_in(b"password = hunter2\n", "notes.txt") is None
