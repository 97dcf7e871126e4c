"""File roles from paths (issue 15 #3): build output, lock files, manifests, changelogs, tests, docs."""
from __future__ import annotations

import pytest

from codesift.walk.roles import ROLES, file_role

CASES = {
    "src/utils/common.ts": "source",
    "lib/requests/sessions.py": "source",
    "dist/immer.mjs": "bundle",
    "dist/cjs/immer.cjs.development.js": "bundle",
    "public/app.min.js": "bundle",
    "static/site.bundle.js": "bundle",
    "static/site.css.map": "bundle",
    "build/lib/pkg/module.py": "generated",
    "vendor/github.com/x/y/y.go": "generated",
    "api/service_pb2.py": "generated",
    "package-lock.json": "lock",
    "web/yarn.lock": "lock",
    "poetry.lock": "lock",
    "Cargo.lock": "lock",
    "go.sum": "lock",
    "package.json": "manifest",
    "pyproject.toml": "manifest",
    "requirements-dev.txt": "manifest",
    "HISTORY.md": "changelog",
    "CHANGELOG": "changelog",
    "docs/NEWS.rst": "changelog",
    "changelog.d/123.feature.md": "changelog",
    "news.py": "source",
    "history/models.py": "source",
    "tests/test_api.py": "test",
    "pkg/server_test.go": "test",
    "src/app.spec.ts": "test",
    "src/test/java/org/FooTest.java": "test",
    "src/main/java/org/Latest.java": "source",
    "conftest.py": "test",
    "README.md": "docs",
    "docs/api/index.html": "docs",
    "CMakeLists.txt": "source",
}


@pytest.mark.parametrize("path,role", CASES.items())
def test_role_of_path(path, role):
    assert file_role(path) == role
    assert role in ROLES
