"""The btrfs graph driver: every layer is a btrfs subvolume, a child layer a snapshot of its
parent's subvolume (constant time whatever the layer holds)."""
