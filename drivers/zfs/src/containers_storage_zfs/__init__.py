"""The zfs graph driver: each layer is a ZFS dataset, a child layer a clone of a snapshot of
its parent. Works with kernel OpenZFS and with zfs-fuse."""
