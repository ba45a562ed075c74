// What `tskv snapshot`'s help needs of the snapshot room, apart so that
// printing it does not load the room.

/** The global options of etcdctl that `tskv snapshot` takes (the help lists these). */
export const SNAPSHOT_GLOBAL_FLAGS: readonly string[] = ["endpoints", "cacert", "cert", "key", "write-out"]
