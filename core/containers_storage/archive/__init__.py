"""Layer diffs: tar streams in and out, compression, tar-split, whiteouts, ID shifting.

Modules are imported on use; nothing here runs at start-up.
"""
