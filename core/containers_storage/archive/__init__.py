"""Layer diffs: tar streams in and out, compression, tar-split, whiteouts, ID shifting.

Modules (each imported on use; nothing here runs at start-up):

* :mod:`.ingest` -- :func:`~.ingest.apply_layer_stream`, the store's one-pass apply of a
  (possibly compressed) blob: digests, sizes, owners, tar-split, extraction.
* :mod:`.apply` -- :func:`~.apply.apply_tar`, safe extraction through directory
  descriptors, whiteouts per :class:`~containers_storage.drivers.api.WhiteoutFormat`.
* :mod:`.tarsplit` -- recording (:func:`~.tarsplit.disassemble`) and replay
  (:func:`~.tarsplit.assemble`) of upstream's tar-split files;
  :class:`~.tarsplit.DirectoryFileGetter` opens layer files confined to a root.
* :mod:`.export` -- generated diffs (:func:`~.export.tar_tree`,
  :func:`~.export.tar_changes`) with upstream's header rules; output compression.
* :mod:`.changes` -- the generic tree comparison and diff size.
* :mod:`.idshift` -- re-owning a tree between ID maps.
* :mod:`.compression`, :mod:`.crc64`, :mod:`.tarheader`, :mod:`.tarreader`,
  :mod:`.tarwriter`, :mod:`.paths`, :mod:`.rooted`, :mod:`.types` -- the parts.
"""
