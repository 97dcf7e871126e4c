"""A deterministic set of varied texts for parity tests: code in several languages, prose,
unicode, empty and whitespace-only strings, and texts far over the model's token limit."""
from __future__ import annotations

import random
import sysconfig
from pathlib import Path

SNIPPETS = [
    # JavaScript / TypeScript
    "function debounce(fn, ms) {\n  let t;\n  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };\n}",
    "export const fetchUser = async (id: string): Promise<User> => {\n  const res = await fetch(`/api/users/${id}`);\n  return res.json();\n};",
    "class EventEmitter { constructor() { this.listeners = new Map(); } on(e, cb) { (this.listeners.get(e) ?? this.listeners.set(e, []).get(e)).push(cb); } }",
    # Rust
    "fn parse_header(buf: &[u8]) -> Result<Header, Error> {\n    let len = u64::from_le_bytes(buf[..8].try_into()?);\n    Ok(Header { len })\n}",
    "impl<T: Ord> BinaryHeap<T> {\n    pub fn push(&mut self, item: T) { self.data.push(item); self.sift_up(self.data.len() - 1); }\n}",
    # Go
    "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n\tif r.Method != http.MethodGet {\n\t\thttp.Error(w, \"method not allowed\", 405)\n\t\treturn\n\t}\n}",
    "type Cache struct {\n\tmu sync.RWMutex\n\titems map[string]entry\n}",
    # C / C++
    "static int hash_string(const char *s) {\n    unsigned long h = 5381;\n    int c;\n    while ((c = *s++)) h = ((h << 5) + h) + c;\n    return (int)(h % TABLE_SIZE);\n}",
    "template <typename T>\nclass RingBuffer {\n public:\n  explicit RingBuffer(size_t n) : buf_(n) {}\n  bool push(const T& v);\n private:\n  std::vector<T> buf_;\n};",
    # Java
    "public class UserService {\n    private final UserRepository repo;\n    public Optional<User> findByEmail(String email) { return repo.findByEmail(email.toLowerCase()); }\n}",
    # SQL, shell, JSON, YAML, Markdown
    "SELECT u.id, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id HAVING count(o.id) > 3;",
    "#!/bin/sh\nset -eu\nfor f in \"$@\"; do gzip -9 \"$f\"; done",
    '{"name": "codesift", "version": "0.1.0", "dependencies": {"numpy": ">=1.24"}}',
    "services:\n  web:\n    image: nginx:1.25\n    ports: [\"8080:80\"]",
    "# Installation\n\nRun `pip install codesift`, then **index** your repository:\n\n```sh\ncodesift index .\n```",
]

PROSE = [
    "How do I read a configuration file and merge it with environment variables?",
    "The quick brown fox jumps over the lazy dog.",
    "Return the number of seconds since the epoch, as a floating point number.",
    "Searching code by meaning finds functions whose names you do not remember.",
    "Tokenization splits text into word pieces from a fixed vocabulary.",
]

UNICODE = [
    "naïve café résumé façade — “quoted” ‘text’ … ±½",
    "日本語のテキストを検索する関数",
    "中文文本：查找代码中的函数定义",
    "한국어 문장입니다",
    "Привет, мир! Это тест.",
    "مرحبا بالعالم",
    "שלום עולם",
    "emoji 😀🚀🔥 and symbols ∑∫√∞ ≠ ≤ ≥",
    "Zalgo t̶̡̛e̵̢x̷t̴ ̶w̵i̸t̷h̵ ̶c̵o̸m̷b̶i̵n̵i̷n̸g̴ marks",
    "\u200bzero\u200bwidth\u200bspaces\ufeff and a BOM",
    "tab\tseparated\tvalues\nand\r\nCRLF lines",
    "control \x00 \x07 \x1b[31m chars",
]

EDGE = ["", " ", "\n\n\t  ", "a", ".", "[CLS] [SEP] [PAD] [MASK] [UNK]", "x" * 5000, "word " * 2000]


def stdlib_snippets(n: int, rng: random.Random) -> list[str]:
    """Slices of real Python source from this interpreter's standard library."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.glob("*.py"))[:200]
    out = []
    for p in rng.sample(files, min(len(files), n)):
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
        if not lines:
            continue
        start = rng.randrange(len(lines))
        length = rng.choice([1, 3, 8, 20, 60, 200])  # the longer ones exceed 256 tokens
        out.append("\n".join(lines[start:start + length]))
    return out


def parity_texts(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = SNIPPETS + PROSE + UNICODE + EDGE
    texts += stdlib_snippets(200, rng)
    # mixtures: code with prose, unicode inside code, and long concatenations over the limit
    while len(texts) < 520:
        kind = rng.randrange(4)
        if kind == 0:
            texts.append(rng.choice(PROSE) + "\n" + rng.choice(SNIPPETS))
        elif kind == 1:
            texts.append(rng.choice(SNIPPETS).replace("e", rng.choice(["é", "е", "ё", "ℯ"])))
        elif kind == 2:
            texts.append("\n\n".join(rng.sample(SNIPPETS, 6)))
        else:
            words = " ".join(" ".join(rng.choice(PROSE).split()[: rng.randint(1, 8)]) for _ in range(rng.randint(1, 4)))
            texts.append(words)
    return texts
