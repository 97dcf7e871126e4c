"""Files that hold secrets (private keys, tokens, credentials), recognised by name and by content.

The walk skips them by default and reports them, so that they are never indexed, served or
exported; `walk(..., include_secrets=True)` keeps them. The lists are short on purpose: each
entry is a file whose whole point is a secret, or a signature that does not occur in code by
accident. A false positive costs one reported file; a false negative leaks a key.
"""
from __future__ import annotations

import re

# Files that are secrets by name alone. Reasons are shown as "secret (<reason>)".
_SECRET_NAMES: dict[str, str] = {
    **dict.fromkeys(("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"),
                    "private key"),                             # ssh's default key files
    "master.key": "private key",                               # Rails' credentials key
    **dict.fromkeys((".netrc", "_netrc", ".pgpass", ".git-credentials", ".htpasswd"), "credentials file"),
    # cloud command-line tools: ~/.aws/credentials, gcloud's application default credentials,
    # and the OAuth client file that Google's quickstarts save as credentials.json
    **dict.fromkeys(("credentials", "credentials.json", "application_default_credentials.json"),
                    "credentials file"),
    **dict.fromkeys((".env", ".envrc"), "environment file"),
}
# ".env.local", ".env.production", ...: secrets. ".env.example" and its kin are committed
# templates without values, and worth finding.
_ENV_TEMPLATES = frozenset({"example", "sample", "template", "dist", "defaults"})
_KEY_STORE_EXTENSIONS = frozenset({"p12", "pfx", "jks", "keystore"})
# Folders of keys: everything inside is a secret or next to one.
_SECRET_FOLDERS = frozenset({".ssh", ".gnupg"})

# Package-registry settings are ordinary config unless they carry a token.
_REGISTRY_FILES = frozenset({".npmrc", ".yarnrc.yml", ".pypirc"})
# A value, not a reference to an environment variable ("${NPM_TOKEN}").
_REGISTRY_TOKEN = re.compile(
    rb"(?im)^[ \t]*(?:\S*:)?(?:_authToken|_auth|_password|npmAuthToken|password)[ \t]*[=:][ \t]*[\"']?(?!\$)[^\s\"']")

# Content signatures: (cheap substring that must occur, regex, reason).
_SIGNATURES: tuple[tuple[tuple[bytes, ...], re.Pattern[bytes], str], ...] = (
    # A PEM / OpenSSH / PGP private key with its key material after it (also inside a JSON or
    # code string with "\n" escapes); a PEM parser's bare marker string is not a key.
    ((b"PRIVATE KEY",),
     re.compile(rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]{0,300}?[A-Za-z0-9+/]{60}"),
     "private key"),
    # AWS access key ids; AWS's documentation key (…EXAMPLE) is everywhere in code and docs.
    ((b"AKIA", b"ASIA"),
     re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)(?![A-Z2-7]{9}EXAMPLE)[A-Z2-7]{16}(?![A-Za-z0-9])"),
     "AWS access key"),
    ((b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"),
     re.compile(rb"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])"),
     "GitHub token"),
    ((b"xox",),
     re.compile(rb"(?<![A-Za-z0-9])xox[abposr]-[0-9]{6,}-[0-9A-Za-z-]{8,}"),
     "Slack token"),
)


def secret_by_name(rel: str, is_dir: bool = False) -> str | None:
    """Why the file or folder at `rel` is a secret by its name alone ("secret (...)"), or None."""
    name = rel.rpartition("/")[2]
    if is_dir:
        return "secret (key folder)" if name in _SECRET_FOLDERS else None
    reason = _SECRET_NAMES.get(name)
    if reason is None and name.startswith(".env.") and name[5:].lower() not in _ENV_TEMPLATES:
        reason = "environment file"
    if reason is None and name.rpartition(".")[2].lower() in _KEY_STORE_EXTENSIONS and "." in name:
        reason = "key store"
    return None if reason is None else f"secret ({reason})"


def secret_in(data: bytes, rel: str = "") -> str | None:
    """Why the file at `rel` with contents `data` (or a prefix of them) is a secret, or None."""
    for needles, regex, reason in _SIGNATURES:
        if any(needle in data for needle in needles) and regex.search(data):
            return f"secret ({reason})"
    if rel.rpartition("/")[2] in _REGISTRY_FILES and _REGISTRY_TOKEN.search(data):
        return "secret (registry token)"
    return None
