"""Partial pulls: zstd:chunked and eStargz layers applied from their table of contents,
with file contents taken from other layers of the store where they already exist.

Modules, bottom up: :mod:`.formats` (keys), :mod:`.toc` (entries), :mod:`.sources`
(byte ranges of a blob), :mod:`.zstdchunked` and :mod:`.estargz` (reading a blob's
metadata), :mod:`.rollsum` and :mod:`.writer` (our zstd:chunked writer), then the differ.
"""
