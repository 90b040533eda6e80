/* Where the kernel's cgroup2 and bpffs live on this host: read from
 * /proc/mounts, never assumed (hybrid hosts mount cgroup2 elsewhere). */
#ifndef FERRY_MOUNTS_H
#define FERRY_MOUNTS_H

#include <stddef.h>

/* The first cgroup2 mount point. Returns 0, or -1 when none is mounted. */
int mounts_cgroup2_root(char *out, size_t len);

/* Make dir exist inside a bpffs, mounting bpffs on /sys/fs/bpf (or on dir
 * itself when it lies elsewhere) when none covers it. Returns 0 or -errno,
 * logged. */
int mounts_ensure_bpffs_dir(const char *dir);

#endif
