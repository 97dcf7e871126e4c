"""Version stamps of what an index holds. A search reads them too (to say an index is outdated),
so this module imports nothing: the chunkers and the indexer stay out of a search's start-up."""

# Bump when chunking changes.
CHUNKER_VERSION = 6  # 3: definitions nested in a function too long for one chunk get their own;
# 4: a const object of methods is a symbol, its methods inside; 5: chunks bounded in characters too,
# a line too long for one chunk cut into pieces of the line; 6: a markdown heading with no text of its
# own opens its subsection's chunk (document.searched_text leaves it out of what is embedded and of
# the BM25 body: no chunk the chunker made before has that shape, so no other format changes)
# Bump EMBED_FORMAT when the embedded text changes (document.embed_text), TERMS_FORMAT when the
# BM25 fields do, HEAD_FORMAT when document.head_text does. Any bump makes the indexer re-chunk
# every file; vectors are keyed by the hash of the embedded text (and EMBED_FORMAT), so only a
# change to what is embedded costs any embedding.
EMBED_FORMAT = 2
TERMS_FORMAT = 3  # 3: no dictionary segmentation of parts over MAX_TERM_LEN characters
HEAD_FORMAT = 1

# Bump STORE_FORMAT when how an index lays out what it holds changes (3: int8 vector segments).
STORE_FORMAT = 3

# The chunk sizes the indexer asks for (lines: the size aimed at, and the most a chunk may have).
# Part of the stamp: other sizes make other chunks.
CHUNK_TARGET_LINES = 40
CHUNK_MAX_LINES = 80

INDEX_FORMAT = (f"{CHUNKER_VERSION}.{EMBED_FORMAT}.{TERMS_FORMAT}.{HEAD_FORMAT}.{STORE_FORMAT}"
                f"-{CHUNK_TARGET_LINES}x{CHUNK_MAX_LINES}")
