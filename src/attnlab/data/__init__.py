"""Data: text corpora, images and biological sequences, with download + cache + checksum.

Everything the tests and the default commands need ships with the install (offline);
named larger data sets download on demand into the user cache (`attnlab.utils.cache_dir`)
and are verified against a pinned sha256 before use.
"""
