"""A small repository to index in tests: code, docs, config, and the bad inputs a real tree has."""
from __future__ import annotations

from pathlib import Path

FILES = {
    "src/config.py": '''import json
import os


def load_config(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def merge_env(config, environ=os.environ):
    for key, value in environ.items():
        if key.startswith("APP_"):
            config[key[4:].lower()] = value
    return config
''',
    "src/server.py": '''import socket


class HttpServer:
    """Serves files over HTTP."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = None

    def start(self):
        self.sock = socket.create_server((self.host, self.port))
        self.sock.listen()

    def stop(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def handle_request(self, conn):
        data = conn.recv(65536)
        method, path, _ = data.split(b" ", 2)
        conn.sendall(b"HTTP/1.1 200 OK\\r\\n\\r\\n" + path)
''',
    "src/geometry.rs": '''pub struct Point { pub x: f64, pub y: f64 }

impl Point {
    pub fn distance(&self, other: &Point) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }
}
''',
    "docs/guide.md": '''# User guide

## Installation

Install with pip and run the setup command.

## Configuration

Settings come from a file, and the environment can override them.

### Environment variables

Variables starting with APP_ override the configuration file.
''',
    "package.json": '{"name": "demo", "version": "1.0.0", "scripts": {"test": "pytest"}}\n',
    ".gitignore": "build/\n*.log\n",
    "build/generated.py": "def generated():\n    return 1\n",
    "debug.log": "noise\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Each file of `files` (path relative to root: text) written under root."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def index_files(root: Path, files: dict[str, str], embedder) -> Path:
    """`files` written under root and indexed there in this process; the index folder."""
    from codesift.index.indexer import index_tree

    write_tree(root, files)
    index_tree(root, embedder=embedder, workers=1)
    return root / ".codesift"


def make_repo(root: Path) -> Path:
    write_tree(root, FILES)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (root / "notes.txt").write_bytes(b"caf\xe9 au lait\nplain text after a bad byte\n")
    (root / "huge.txt").write_text("x" * 2_000_000)
    return root
