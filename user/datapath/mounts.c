#include "datapath/mounts.h"

#include <errno.h>
#include <linux/magic.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "common/log.h"

int mounts_cgroup2_root(char *out, size_t len)
{
	FILE *f = setmntent("/proc/mounts", "r");
	struct mntent *m;
	int ret = -1;

	if (!f)
		return -1;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(out, len, "%s", m->mnt_dir);
			ret = 0;
			break;
		}
	}
	endmntent(f);
	return ret;
}

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *dir)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int mounts_ensure_bpffs_dir(const char *dir)
{
	const char *mnt = strncmp(dir, "/sys/fs/bpf/", 12) == 0 ? "/sys/fs/bpf" : dir;
	int err;

	if (!is_bpffs(mnt)) {
		err = mkdir_p(mnt);
		if (err || mount("bpf", mnt, "bpf", 0, "mode=0700")) {
			err = err ? err : -errno;
			log_error("datapath", "cannot mount bpffs on %s: %s", mnt, strerror(-err));
			return err;
		}
		log_info("datapath", "mounted bpffs on %s", mnt);
	}
	err = mkdir_p(dir);
	if (err)
		log_error("datapath", "cannot create %s: %s", dir, strerror(-err));
	return err;
}
