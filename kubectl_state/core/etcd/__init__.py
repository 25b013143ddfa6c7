"""etcd v3 access over the JSON gateway: keys, snapshots, members."""
